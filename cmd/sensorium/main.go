// Command sensorium is the Sensorium binary: the server (serve), a
// self-contained demo (demo), and a client of a running server (stream,
// fragments, get, query).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sensorium-io/sensorium/internal/wire"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "sensorium: "+oneLine(err))
	var ue *usageError
	if errors.As(err, &ue) {
		os.Exit(2)
	}
	os.Exit(1)
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// oneLine renders an error for a person: an API error by its name and message.
func oneLine(err error) string {
	var ae *wire.APIError
	if errors.As(err, &ae) {
		return ae.Message + " (" + ae.Name + ")"
	}
	return err.Error()
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "sensorium",
		Short: "Ingest, store, index and serve time-encoded sensor data",
		Long: `Sensorium ingests time-encoded sensor data (vibration, audio, RADAR, LIDAR,
video …) over NATS JetStream, stores it durably, indexes it by producer and
server time, and serves it back as MKV (the Kinesis Video Streams API) and as
Apache Arrow.`,
		Example: `  sensorium demo                       # everything on a laptop, in one command
  sensorium serve --data ./data         # run a server
  sensorium stream create pump-1 --retention-hours 24
  sensorium query pump-1 --start -1h -o last-hour.arrow`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usagef("%v (see %s --help)", err, c.CommandPath())
	})
	root.AddCommand(newServeCmd(), newDemoCmd(), newStreamCmd(), newFragmentsCmd(), newGetCmd(), newQueryCmd())
	return root
}
