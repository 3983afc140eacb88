package main

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
)

// presignable are the operations a presigned URL may be made for.
// A presigned URL does not cover the body, so whoever holds it may name any
// stream in one: only PutMedia, whose stream is a signed header, and the
// operations that only read are offered.
var presignable = []string{
	"putMedia", "getMedia", "getMediaForFragmentList", "listFragments",
	"describeStream", "listStreams", "listTagsForStream", "getDataEndpoint",
}

func newPresignCmd() *cobra.Command {
	var expires time.Duration
	cmd := &cobra.Command{
		Use:   "presign OPERATION",
		Short: "Print a presigned URL, for a producer that cannot sign (ffmpeg, a camera)",
		Long: `Print a URL of OPERATION (putMedia, getMedia, listFragments …) that carries
its own AWS Signature Version 4 in the query string, for a server started
with --credentials. Whoever holds the URL may call that operation until it
expires. The signature covers the method, the path, the host and, for
putMedia, the stream (--stream: the producer must send that
x-amzn-stream-name), but not the body, as with an S3 presigned URL; so only
putMedia and the operations that read are offered. Give a URL to one
producer and keep --expires short.

The signing key is found as the AWS CLI finds it: --profile, or
$AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY, or the [default] profile of
~/.aws/credentials.`,
		Example: `  sensorium presign putMedia --stream camera-1 --expires 12h

  # ffmpeg's own HTTP output: wall-clock timecodes, a cluster per key frame
  # (a fragment must start with one), and no acknowledgements, which ffmpeg
  # never reads (unread, they make its close a reset that loses its last
  # fragment)
  ffmpeg -re -i camera.mp4 -c copy -map_metadata -1 \
    -output_ts_offset "$(date +%s.%N)" \
    -f matroska -cluster_size_limit 50000000 -cluster_time_limit 10000 \
    -method POST -headers $'x-amzn-stream-name: camera-1\r\nx-amzn-fragment-timecode-type: ABSOLUTE\r\nx-sensorium-acks: none\r\n' \
    "$(sensorium presign putMedia --stream camera-1)"`,
		Args: cobra.ExactArgs(1),
	}
	def := os.Getenv(endpointEnv)
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	ep := cmd.Flags().String("endpoint", def, "URL of the server's HTTP API (or $"+endpointEnv+")")
	cmd.Flags().DurationVar(&expires, "expires", time.Hour, "how long the URL is valid (1s to 168h)")
	stream := cmd.Flags().String("stream", "", "putMedia: the stream the URL may write to (its x-amzn-stream-name header is signed; the producer must send it)")
	signing := addSigning(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		op := args[0]
		if !slices.Contains(presignable, op) {
			return usagef("operation %q is not one of %s", op, strings.Join(presignable, ", "))
		}
		if err := checkEndpoint(*ep); err != nil {
			return err
		}
		if expires < time.Second || expires > awsauth.MaxPresignExpiry {
			return usagef("--expires %v must be from 1s to %v", expires, awsauth.MaxPresignExpiry)
		}
		creds, err := signing()
		if err != nil {
			return err
		}
		if creds == nil {
			return usagef("presign needs an access key of the server's credentials file: --profile, or $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY")
		}
		switch {
		case op == "putMedia" && *stream == "":
			return usagef("presign putMedia needs --stream: the URL is bound to that stream")
		case op != "putMedia" && *stream != "":
			return usagef("--stream is for putMedia; a presigned URL does not cover the body that names the stream of %s", op)
		}
		req, err := http.NewRequest(http.MethodPost, strings.TrimRight(*ep, "/")+"/"+op, nil)
		if err != nil {
			return usagef("--endpoint: %v", err)
		}
		if *stream != "" {
			req.Header.Set("x-amzn-stream-name", *stream)
		}
		key := awsauth.Key{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey}
		if err := awsauth.Presign(req, key, creds.Region, time.Now(), expires); err != nil {
			return err
		}
		_, err = fmt.Fprintln(cmd.OutOrStdout(), req.URL.String())
		return err
	}
	return cmd
}
