// Package stream is what every example producer does around its simulator:
// flags for the server and the stream, creating the stream when it is
// missing, a producer with one track per description (Run) or with tracks
// the example made itself (RunTracks: video, opaque bytes), pacing in real
// time, and a clean close that waits for PERSISTED.
package stream

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
)

// Config is what the flags set.
type Config struct {
	NATS, Endpoint, Stream string
	Duration               time.Duration
	// MediaType is the stream's media type when Run creates it (GetMedia
	// answers with it); default application/x-sensorium. Set it after Flags.
	MediaType string
}

// Flags registers the common flags; call flag.Parse after.
func Flags(defaultStream string) *Config {
	c := &Config{}
	flag.StringVar(&c.NATS, "nats", "nats://127.0.0.1:4222", "NATS URL of the Sensorium server")
	flag.StringVar(&c.Endpoint, "endpoint", "http://127.0.0.1:8080", "HTTP API of the server (to create the stream when missing)")
	flag.StringVar(&c.Stream, "stream", defaultStream, "stream to write")
	flag.DurationVar(&c.Duration, "duration", 0, "stop after this long (0: until interrupted)")
	return c
}

// Session is a running producer.
type Session struct {
	P         *sdk.Producer
	Start     time.Time // when the session started: the examples' origin
	cfg       *Config
	start     time.Time
	persisted atomic.Int64
}

// Run creates the stream if needed, starts a producer with track i+1 for
// descs[i], runs produce, then flushes and waits for PERSISTED.
func Run(ctx context.Context, cfg *Config, descs []signals.Description, produce func(ctx context.Context, s *Session) error) error {
	var tracks []sdk.Track
	for i, d := range descs {
		var t sdk.Track
		var err error
		switch d := d.(type) {
		case *signals.Audio: // players need its Audio element
			t, err = sdk.AudioTrack(uint64(i+1), "audio", d)
		default:
			t, err = sdk.DescriptionTrack(uint64(i+1), d.Kind().String(), d)
		}
		if err != nil {
			return err
		}
		tracks = append(tracks, t)
	}
	return RunTracks(ctx, cfg, tracks, produce)
}

// RunTracks is Run with tracks the caller made (sdk.H264Track,
// sdk.OpaqueTrack, …), each with its own number.
func RunTracks(ctx context.Context, cfg *Config, tracks []sdk.Track, produce func(ctx context.Context, s *Session) error) error {
	creds, err := sdk.LoadCredentials("") // for a server with --credentials; none: unsigned
	if err != nil {
		return err
	}
	client := sdk.NewClientWithOptions(cfg.Endpoint, sdk.ClientOptions{Credentials: creds})
	mediaType := cfg.MediaType
	if mediaType == "" {
		mediaType = "application/x-sensorium"
	}
	if _, err := client.DescribeStream(ctx, sdk.ByName(cfg.Stream)); errors.Is(err, sdk.ErrResourceNotFound) {
		if _, err := client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: cfg.Stream, DataRetentionInHours: 24, MediaType: mediaType}); err != nil {
			return err
		}
		log.Printf("created stream %s (retention 24 h, %s)", cfg.Stream, mediaType)
	} else if err != nil {
		return err
	}
	nc, err := nats.Connect(cfg.NATS, nats.Name("example-"+cfg.Stream), nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	s := &Session{cfg: cfg, start: time.Now()}
	s.Start = s.start
	s.P, err = sdk.NewProducer(ctx, nc, sdk.ProducerConfig{
		Stream: cfg.Stream, Tracks: tracks,
		OnAck: func(ev sdk.AckEvent) {
			switch ev.EventType {
			case sdk.EventPersisted:
				s.persisted.Add(1)
			case sdk.EventError:
				log.Printf("fragment refused: %s (%d): %s", ev.ErrorCode, ev.ErrorID, ev.Message)
			}
		},
	})
	if err != nil {
		return err
	}
	log.Printf("streaming to %s", cfg.Stream)
	perr := produce(ctx, s)
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.P.Close(cctx); err != nil {
		return fmt.Errorf("closing: %w", err)
	}
	log.Printf("done: %d fragments PERSISTED", s.persisted.Load())
	if errors.Is(perr, context.Canceled) {
		return nil
	}
	return perr
}

// Every calls f with the time of each period from the start, in real time,
// until ctx ends or the configured duration has passed.
func (s *Session) Every(ctx context.Context, period time.Duration, f func(t int64) error) error {
	next := s.start
	for {
		if s.cfg.Duration > 0 && next.Sub(s.start) >= s.cfg.Duration {
			return nil
		}
		if d := time.Until(next); d > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
			}
		}
		if err := f(next.UnixNano()); err != nil {
			return err
		}
		next = next.Add(period)
	}
}
