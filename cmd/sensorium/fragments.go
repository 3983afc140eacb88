package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sensorium-io/sensorium/sdk"
)

func newFragmentsCmd() *cobra.Command {
	var start, end, basis string
	var limit int
	var metadata bool
	cmd := &cobra.Command{
		Use:   "fragments NAME",
		Short: "List a stream's fragments (ListFragments)",
		Example: `  sensorium fragments pump-1
  sensorium fragments pump-1 --start -10m --end now
  sensorium fragments pump-1 --basis server --start 2026-11-24T12:00:00Z --end 2026-11-24T13:00:00Z
  sensorium fragments cam-archive --metadata    # with each fragment's tags: origin_fragment_number …`,
		Args: exactArgs(1, "a stream name"),
	}
	client := addEndpoint(cmd)
	f := cmd.Flags()
	f.StringVar(&start, "start", "", "first time (inclusive); selects by time, up to --end (default: every fragment)")
	f.StringVar(&end, "end", "now", "last time (inclusive); needs --start")
	f.StringVar(&basis, "basis", "producer", "time basis of --start and --end: producer or server")
	f.IntVar(&limit, "limit", 0, "list at most this many (0: all)")
	f.BoolVar(&metadata, "metadata", false, "show each fragment's metadata tags (for an imported archive, origin_fragment_number and origin_server_timestamp); the server reads every listed fragment for them")
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
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', tabwriter.AlignRight)
		head := "FRAGMENT\tPRODUCER TIME\tSERVER TIME\tDURATION\tBYTES\t"
		if metadata {
			head += " METADATA" // after the last tab: not a right-aligned cell
		}
		fmt.Fprintln(tw, head)
		n := 0
		for {
			var frags []sdk.FragmentWithMetadata
			var next string
			var err error
			if metadata {
				frags, next, err = c.ListFragmentsWithMetadata(cmd.Context(), in)
			} else {
				var plain []sdk.Fragment
				plain, next, err = c.ListFragments(cmd.Context(), in)
				for _, f := range plain {
					frags = append(frags, sdk.FragmentWithMetadata{Fragment: f})
				}
			}
			if err != nil {
				return err
			}
			for _, fr := range frags {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%dms\t%d\t", fr.FragmentNumber,
					fr.ProducerTimestamp.Format("2006-01-02T15:04:05.000Z"), fr.ServerTimestamp.Format("2006-01-02T15:04:05.000Z"),
					fr.FragmentLengthInMilliseconds, fr.FragmentSizeInBytes)
				if metadata {
					fmt.Fprint(tw, " "+formatMetadata(fr.Metadata))
				}
				fmt.Fprintln(tw)
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
		fmt.Fprintf(cmd.ErrOrStderr(), "%d fragments\n", n)
		return nil
	}
	return cmd
}

// formatMetadata writes a fragment's tags as name=value separated by
// spaces, sorted by name, a value quoted (Go syntax) when it is empty or
// holds a space, a quote or a separator; "-" for none.
func formatMetadata(tags map[string]string) string {
	if len(tags) == 0 {
		return "-"
	}
	names := make([]string, 0, len(tags))
	for n := range tags {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteString(" ")
		}
		v := tags[n]
		if v == "" || strings.ContainsAny(v, " ,\"=\t\n") {
			v = strconv.Quote(v)
		}
		b.WriteString(n + "=" + v)
	}
	return b.String()
}
