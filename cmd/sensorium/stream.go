package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sensorium-io/sensorium/sdk"
)

func newStreamCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stream",
		Short: "Create, describe, list, update and delete streams",
		Example: `  sensorium stream create pump-1 --retention-hours 24 --tag site=plant-a
  sensorium stream list --prefix pump-
  sensorium stream describe pump-1
  sensorium stream update-retention pump-1 --change +48
  sensorium stream delete pump-1`,
	}
	requireSubcommand(cmd)
	cmd.AddCommand(newStreamCreateCmd(), newStreamDescribeCmd(), newStreamListCmd(), newStreamRetentionCmd(), newStreamDeleteCmd())
	return cmd
}

func newStreamCreateCmd() *cobra.Command {
	var in sdk.CreateStreamInput
	var tags []string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a stream",
		Example: `  sensorium stream create pump-1 --retention-hours 24
  sensorium stream create cam-7 --media-type video/h264 --device gateway-3 --tag line=3`,
		Args: exactArgs(1, "a stream name"),
	}
	client := addEndpoint(cmd)
	f := cmd.Flags()
	f.IntVar(&in.DataRetentionInHours, "retention-hours", 24, "hours to keep data; 0 keeps nothing (live only)")
	f.StringVar(&in.DeviceName, "device", "", "name of the producing device")
	f.StringVar(&in.MediaType, "media-type", "", "media type, e.g. application/x-sensorium or video/h264")
	f.StringVar(&in.KmsKeyID, "kms-key-id", "", "id of the master key to encrypt this stream's data with")
	f.StringArrayVar(&tags, "tag", nil, "tag as KEY=VALUE (repeatable)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		in.StreamName = args[0]
		if in.DataRetentionInHours < 0 {
			return usagef("--retention-hours %d is negative (0 keeps nothing)", in.DataRetentionInHours)
		}
		if len(tags) > 0 {
			in.Tags = map[string]string{}
			for _, t := range tags {
				k, v, ok := strings.Cut(t, "=")
				if !ok || k == "" {
					return usagef("--tag %q is not KEY=VALUE", t)
				}
				if _, dup := in.Tags[k]; dup {
					return usagef("--tag %s is given twice", k)
				}
				in.Tags[k] = v
			}
		}
		arn, err := c.CreateStream(cmd.Context(), in)
		if err != nil {
			return err
		}
		fmt.Println(arn)
		return nil
	}
	return cmd
}

func newStreamDescribeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "describe NAME",
		Short:   "Describe a stream (JSON)",
		Example: `  sensorium stream describe pump-1`,
		Args:    exactArgs(1, "a stream name"),
	}
	client := addEndpoint(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		info, err := c.DescribeStream(cmd.Context(), sdk.ByName(args[0]))
		if err != nil {
			return err
		}
		tags, err := c.ListTagsForStream(cmd.Context(), sdk.ByName(args[0]))
		if err != nil {
			return err
		}
		out := struct {
			sdk.StreamInfo
			CreationTime string            `json:"CreationTime"`
			Tags         map[string]string `json:"Tags,omitempty"`
		}{info, info.CreationTime.Format(time.RFC3339Nano), tags}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	return cmd
}

func newStreamListCmd() *cobra.Command {
	var prefix string
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List streams",
		Example: `  sensorium stream list --prefix pump-`,
		Args:    cobra.NoArgs,
	}
	client := addEndpoint(cmd)
	cmd.Flags().StringVar(&prefix, "prefix", "", "only streams whose names begin with this")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSTATUS\tRETENTION\tMEDIA TYPE\tCREATED")
		token := ""
		for {
			infos, next, err := c.ListStreams(cmd.Context(), prefix, 1000, token)
			if err != nil {
				return err
			}
			for _, i := range infos {
				fmt.Fprintf(tw, "%s\t%s\t%dh\t%s\t%s\n", i.StreamName, i.Status, i.DataRetentionInHours, i.MediaType, i.CreationTime.Format(time.RFC3339))
			}
			if next == "" {
				return tw.Flush()
			}
			token = next
		}
	}
	return cmd
}

func newStreamRetentionCmd() *cobra.Command {
	var change string
	cmd := &cobra.Command{
		Use:   "update-retention NAME --change +HOURS|-HOURS",
		Short: "Increase or decrease a stream's retention",
		Example: `  sensorium stream update-retention pump-1 --change +48
  sensorium stream update-retention pump-1 --change -12`,
		Args: exactArgs(1, "a stream name"),
	}
	client := addEndpoint(cmd)
	cmd.Flags().StringVar(&change, "change", "", "hours to add (+N) or remove (-N)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		// Atoi alone would take "48" (no sign) and Sscanf "+48x".
		hours, err := strconv.Atoi(change)
		if err != nil || hours == 0 || (change[0] != '+' && change[0] != '-') {
			return usagef("--change must be +HOURS or -HOURS, e.g. +24, not %q", change)
		}
		c, err := client()
		if err != nil {
			return err
		}
		info, err := c.DescribeStream(cmd.Context(), sdk.ByName(args[0]))
		if err != nil {
			return err
		}
		if err := c.UpdateDataRetention(cmd.Context(), sdk.ByName(args[0]), info.Version, hours); err != nil {
			return err
		}
		fmt.Printf("%s: retention %dh → %dh\n", args[0], info.DataRetentionInHours, info.DataRetentionInHours+hours)
		return nil
	}
	return cmd
}

func newStreamDeleteCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "delete NAME",
		Short:   "Delete a stream and all its data",
		Example: `  sensorium stream delete pump-1`,
		Args:    exactArgs(1, "a stream name"),
	}
	client := addEndpoint(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		if err := c.DeleteStream(cmd.Context(), sdk.ByName(args[0]), ""); err != nil {
			return err
		}
		fmt.Printf("%s: deleted\n", args[0])
		return nil
	}
	return cmd
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s takes %s (see %s --help)", cmd.CommandPath(), what, cmd.CommandPath())
		}
		return nil
	}
}
