package main

import (
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sensorium-io/sensorium/sdk"
)

func newFragmentsCmd() *cobra.Command {
	var start, end, basis string
	var limit int
	cmd := &cobra.Command{
		Use:   "fragments NAME",
		Short: "List a stream's fragments (ListFragments)",
		Example: `  sensorium fragments pump-1
  sensorium fragments pump-1 --start -10m --end now
  sensorium fragments pump-1 --basis server --start 2026-11-24T12:00:00Z --end 2026-11-24T13:00:00Z`,
		Args: exactArgs(1, "a stream name"),
	}
	client := addEndpoint(cmd)
	f := cmd.Flags()
	f.StringVar(&start, "start", "", "first time (inclusive); selects by time, up to --end (default: every fragment)")
	f.StringVar(&end, "end", "now", "last time (inclusive); needs --start")
	f.StringVar(&basis, "basis", "producer", "time basis of --start and --end: producer or server")
	f.IntVar(&limit, "limit", 0, "list at most this many (0: all)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		in := sdk.ListFragmentsInput{Stream: sdk.ByName(args[0]), MaxResults: 1000}
		var selector string
		switch basis {
		case "producer":
			selector = "PRODUCER_TIMESTAMP"
		case "server":
			selector = "SERVER_TIMESTAMP"
		default:
			return usagef("--basis must be producer or server, not %q", basis)
		}
		if limit < 0 {
			return usagef("--limit %d is negative (0 lists all)", limit)
		}
		if limit > 0 && limit < in.MaxResults {
			in.MaxResults = limit
		}
		switch {
		case cmd.Flags().Changed("start") && start == "":
			return usagef("--start is empty")
		case start != "":
			now := time.Now()
			var err error
			if in.Start, err = parseTime(start, now); err != nil {
				return err
			}
			if in.End, err = parseTime(end, now); err != nil {
				return err
			}
			if in.End.Before(in.Start) {
				return usagef("--end %s is before --start %s", end, start)
			}
			in.Selector = selector
		case cmd.Flags().Changed("end"):
			return usagef("--end needs --start: without a time range every fragment is listed")
		case cmd.Flags().Changed("basis"):
			return usagef("--basis needs --start: it says which timestamps --start and --end are")
		}
		c, err := client()
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "FRAGMENT\tPRODUCER TIME\tSERVER TIME\tDURATION\tBYTES\t")
		n := 0
		for {
			frags, next, err := c.ListFragments(cmd.Context(), in)
			if err != nil {
				return err
			}
			for _, fr := range frags {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%dms\t%d\t\n", fr.FragmentNumber,
					fr.ProducerTimestamp.Format("2006-01-02T15:04:05.000Z"), fr.ServerTimestamp.Format("2006-01-02T15:04:05.000Z"),
					fr.FragmentLengthInMilliseconds, fr.FragmentSizeInBytes)
				n++
				if limit > 0 && n >= limit {
					return tw.Flush()
				}
			}
			if next == "" {
				break
			}
			in.NextToken = next
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%d fragments\n", n)
		return nil
	}
	return cmd
}
