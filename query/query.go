package query

import (
	"log/slog"
	"time"

	"github.com/sensorium-io/sensorium/store"
)

// Options configure a Service.
type Options struct {
	Store  *store.Store
	Logger *slog.Logger
	Now    func() time.Time
}

// Service answers the read APIs from a store.
type Service struct {
	st  *store.Store
	log *slog.Logger
	now func() time.Time
}

// New returns a Service.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{st: o.Store, log: o.Logger, now: o.Now}
}
