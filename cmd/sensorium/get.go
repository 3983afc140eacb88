package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sensorium-io/sensorium/sdk"
)

func newGetCmd() *cobra.Command {
	var out, from, fragment, token, fragments string
	var follow bool
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Download a stream's media as MKV (GetMedia / GetMediaForFragmentList)",
		Long: `Download a stream's chunks as MKV, with the fragment number, server and
producer timestamps and continuation token in each chunk's tags (as the
Kinesis Video Streams GetMedia API writes them). By default it starts at the
earliest fragment and stops when it has caught up; --follow keeps following
the stream live until interrupted.`,
		Example: `  sensorium get pump-1 -o pump-1.mkv
  sensorium get pump-1 --from -5m -o last-5-minutes.mkv
  sensorium get pump-1 --from now --follow | ffprobe -
  sensorium get pump-1 --fragments 1201,1205 -o two.mkv
  sensorium get pump-1 --after-token 1205 -o rest.mkv`,
		Args: exactArgs(1, "a stream name"),
	}
	client := addEndpoint(cmd)
	f := cmd.Flags()
	f.StringVarP(&out, "output", "o", "-", "file to write, - for stdout")
	f.StringVar(&from, "from", "earliest", "where to start: earliest, now, or a producer time (RFC 3339, -1h, Unix seconds)")
	f.StringVar(&fragment, "fragment", "", "start at this fragment number")
	f.StringVar(&token, "after-token", "", "start after this continuation token")
	f.StringVar(&fragments, "fragments", "", "comma-separated fragment numbers to fetch (GetMediaForFragmentList)")
	f.BoolVar(&follow, "follow", false, "keep following the stream live")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ref := sdk.ByName(args[0])
		if err := exclusive(cmd, "each says where to start", "from", "fragment", "after-token"); err != nil {
			return err
		}
		for _, other := range []string{"from", "fragment", "after-token", "follow"} {
			if err := exclusive(cmd, "--fragments fetches just the fragments it lists", "fragments", other); err != nil {
				return err
			}
		}
		if err := refuseTerminal(out); err != nil {
			return err
		}
		var list []string
		var sel sdk.StartSelector
		switch {
		case cmd.Flags().Changed("fragments"):
			for _, n := range strings.Split(fragments, ",") {
				if n = strings.TrimSpace(n); n == "" {
					return usagef("--fragments %q has an empty fragment number", fragments)
				}
				list = append(list, n)
			}
		case cmd.Flags().Changed("fragment"):
			if fragment == "" {
				return usagef("--fragment is empty")
			}
			sel = sdk.StartAtFragment(fragment)
		case cmd.Flags().Changed("after-token"):
			if token == "" {
				return usagef("--after-token is empty")
			}
			sel = sdk.StartAfterToken(token)
		case from == "earliest":
			sel = sdk.StartEarliest()
		case from == "now":
			if !follow {
				// Without --follow the response ends once it has caught up: at once.
				return usagef("--from now gets nothing without --follow")
			}
			sel = sdk.StartNow()
		default:
			t, err := parseTime(from, time.Now())
			if err != nil {
				return err
			}
			sel = sdk.StartAtProducerTime(t)
		}
		c, err := client()
		if err != nil {
			return err
		}
		var body io.ReadCloser
		if list != nil {
			body, err = c.GetMediaForFragmentList(cmd.Context(), ref, list)
		} else {
			body, err = c.GetMedia(cmd.Context(), ref, sel, follow)
		}
		if err != nil {
			return err
		}
		defer body.Close()
		w, isFile, err := output(out)
		if err != nil {
			return err
		}
		pw, done := progress(w, "get "+args[0])
		n, err := io.Copy(pw, body)
		done()
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil && cmd.Context().Err() == nil {
			return fmt.Errorf("get %s: %w", args[0], err)
		}
		if isFile {
			fmt.Fprintf(os.Stderr, "wrote %s to %s\n", humanBytes(n), out)
		}
		return nil
	}
	return cmd
}
