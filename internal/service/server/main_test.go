package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// childEnv makes the test binary run a server instead of the tests: the crash
// tests start it as a subprocess so that they can SIGKILL it.
const childEnv = "SENSORIUM_TEST_CHILD_SERVER"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(runChild(dir))
	}
	os.Exit(m.Run())
}

// runChild serves until SIGTERM (clean shutdown, exit 0) or SIGKILL.
func runChild(dir string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	srv, err := Start(ctx, Config{
		DataDir: dir, NATSListen: os.Getenv(childEnv + "_NATS"), HTTPListen: os.Getenv(childEnv + "_HTTP"), Logger: log,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child server:", err)
		return 3
	}
	fmt.Printf("READY %s %s\n", srv.HTTPURL(), srv.NATSURL())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		fmt.Fprintln(os.Stderr, "child server shutdown:", err)
		return 4
	}
	return 0
}
