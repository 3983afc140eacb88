// Command sensorium is the Sensorium binary: the server (serve), a
// self-contained demo (demo), and a client of a running server (stream,
// fragments, get, import, query).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/sdk"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed (the server said no, the network, a file)
	exitUsage   = 2 // the command line is wrong: nothing was done
)

// run runs the command line args and returns the exit status, with a
// failure told on stderr in one line. stdout and stderr take cobra's own
// output (help); the commands write their results to os.Stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "sensorium: "+oneLine(err))
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFailure
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// oneLine renders an error for a person: an API error by its name and
// message, an answer that is not the API's with a hint about the endpoint.
func oneLine(err error) string {
	var ae *httpwire.APIError
	var he *sdk.HTTPError
	var te *sdk.TimeoutError
	switch {
	case errors.As(err, &ae):
		if ae.Message == "" {
			return ae.Name
		}
		return ae.Message + " (" + ae.Name + ")"
	case errors.As(err, &he):
		return err.Error() + "; is --endpoint a Sensorium server?"
	case errors.As(err, &te):
		return err.Error() + " (see --timeout and --endpoint)"
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

// moreCommands are the commands that register themselves from their own
// file's init (registerCommand), so that a new command is one new file.
var moreCommands []func() *cobra.Command

func registerCommand(newCmd func() *cobra.Command) { moreCommands = append(moreCommands, newCmd) }

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
	// Cobra checks required flags and flag groups after this hook and
	// reports them as plain errors; checked here they are usage errors.
	root.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		if err := c.ValidateRequiredFlags(); err != nil {
			return usagef("%v (see %s --help)", err, c.CommandPath())
		}
		if err := c.ValidateFlagGroups(); err != nil {
			return usagef("%v (see %s --help)", err, c.CommandPath())
		}
		return nil
	}
	requireSubcommand(root)
	root.AddCommand(newServeCmd(), newDemoCmd(), newStreamCmd(), newFragmentsCmd(), newGetCmd(), newImportCmd(), newQueryCmd(), newPresignCmd(), newClusterCmd())
	for _, newCmd := range moreCommands {
		root.AddCommand(newCmd())
	}
	usageArgs(root)
	return root
}

// requireSubcommand makes cmd, which only groups subcommands, print its
// help when called alone and answer an unknown subcommand with a usage
// error (cobra would print the help and exit 0 for a group below the root,
// and a message of several lines for the root).
func requireSubcommand(cmd *cobra.Command) {
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return c.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
		if c.SuggestionsMinimumDistance <= 0 {
			c.SuggestionsMinimumDistance = 2 // cobra's default, which SuggestionsFor does not apply
		}
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf("; did you mean %q?", s[0])
		}
		return usagef("%s (see %s --help)", msg, c.CommandPath())
	}
}

// usageArgs makes the positional-argument check of every command in the
// tree report a usage error, whoever wrote the check (cobra.NoArgs returns a
// plain error).
func usageArgs(cmd *cobra.Command) {
	if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			err := check(c, args)
			var ue *usageError
			if err != nil && !errors.As(err, &ue) {
				return usagef("%v (see %s --help)", err, c.CommandPath())
			}
			return err
		}
	}
	for _, sub := range cmd.Commands() {
		usageArgs(sub)
	}
}
