package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/mcap"
	"github.com/sensorium-io/sensorium/mcap/ros2"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
)

// MCAP import (docs/MCAP.md): each topic of the file goes to a stream of its
// own, <prefix><topic sanitised>, through the SDK's producer (NATS) to
// PERSISTED; a stream that does not exist is created.

func init() {
	registerImporter(fileImporter{
		exts: []string{".mcap"},
		about: `MCAP (.mcap, ROS 2 and Foxglove recordings): each topic goes to the stream
    <--stream-prefix><topic> (the topic's "/" become ".", other characters
    outside [A-Za-z0-9_.-] "_"), created if missing (--retention-hours).
    sensor_msgs/PointCloud2 becomes LIDAR, Imu IMU, foxglove CompressedVideo
    (H.264) video, sensor_msgs/CompressedImage image frames, messages of one
    number (std_msgs/Float64 …) scalar samples, anything else opaque frames
    with the topic's schema kept; log times become producer timestamps. The
    producer goes over NATS (--nats; default the --endpoint's host, port 4222).`,
		flags: mcapImportFlags,
		run:   importMCAP,
	})
}

// mcapImportOpts are the MCAP import's own flags.
var mcapImportOpts struct {
	prefix     string
	resolution float64
	topics     []string
}

// sharedFlag defines a flag other importers may define too, once.
func sharedFlag(f *pflag.FlagSet, name string, define func()) {
	if f.Lookup(name) == nil {
		define()
	}
}

func mcapImportFlags(f *pflag.FlagSet) {
	f.StringVar(&mcapImportOpts.prefix, "stream-prefix", "", "MCAP: prefix of the stream names the topics go to")
	f.Float64Var(&mcapImportOpts.resolution, "lidar-resolution", 0.0001, "MCAP: metres to which LIDAR x, y and z are quantised")
	f.StringSliceVar(&mcapImportOpts.topics, "topics", nil, "MCAP: import only these topics (comma-separated; shell patterns such as /camera/* match one level)")
	sharedFlag(f, "nats", func() {
		f.String("nats", "", "URL of the server's NATS listener, which producers use (default nats://<--endpoint's host>:4222, or $SENSORIUM_NATS)")
	})
	sharedFlag(f, "retention-hours", func() {
		f.Int("retention-hours", 24, "hours of data a stream the import creates keeps (MCAP; CSV/Parquet/Arrow with --create)")
	})
}

// natsURLFor returns --nats, $SENSORIUM_NATS, or the endpoint's host at
// NATS's port.
func natsURLFor(cmd *cobra.Command) (string, error) {
	if u, _ := cmd.Flags().GetString("nats"); u != "" {
		return u, nil
	}
	if u := os.Getenv("SENSORIUM_NATS"); u != "" {
		return u, nil
	}
	ep, _ := cmd.Flags().GetString("endpoint")
	u, err := url.Parse(ep)
	if err != nil || u.Hostname() == "" {
		return "", usagef("--nats is needed: the NATS URL cannot be derived from --endpoint %q", ep)
	}
	return "nats://" + net.JoinHostPort(u.Hostname(), "4222"), nil
}

// streamNameOf turns a topic into a stream name.
func streamNameOf(prefix, topic string) string {
	var b strings.Builder
	b.WriteString(prefix)
	t := strings.TrimLeft(topic, "/")
	if t == "" {
		t = "root"
	}
	for _, r := range t {
		switch {
		case r == '/':
			b.WriteByte('.')
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := b.String()
	if len(s) > 256 {
		s = s[:256]
	}
	return s
}

// trackMeta is what a track made by the import remembers of its MCAP
// channel, as JSON in the track's name, so that export writes the topic
// back as it was (docs/MCAP.md).
type trackMeta struct {
	Topic           string            `json:"topic"`
	MessageEncoding string            `json:"message_encoding"`
	SchemaName      string            `json:"schema_name,omitempty"`
	SchemaEncoding  string            `json:"schema_encoding,omitempty"`
	Schema          string            `json:"schema,omitempty"`        // UTF-8 schemas
	SchemaBase64    string            `json:"schema_base64,omitempty"` // binary ones (protobuf)
	Metadata        map[string]string `json:"metadata,omitempty"`
	FrameID         string            `json:"frame_id,omitempty"`
	Fields          []ros2.PointField `json:"fields,omitempty"` // PointCloud2: the original point layout
	PointStep       uint32            `json:"point_step,omitempty"`
	ScalarType      string            `json:"scalar_type,omitempty"` // one-number messages: the field's type and name
	ScalarField     string            `json:"scalar_field,omitempty"`
	Format          string            `json:"format,omitempty"` // CompressedImage / CompressedVideo format
	// Imu: track 2 holds the orientation and the three covariances
	// (imuRestChannels), which Sensorium's IMU kind has no place for.
	ImuRest bool `json:"imu_rest,omitempty"`
}

// imuRestChannels are the channels of an IMU topic's second track: what a
// sensor_msgs/Imu holds besides accelerations and rates, in its order.
var imuRestChannels = func() []signals.Channel {
	chs := []signals.Channel{{Name: "orientation_x"}, {Name: "orientation_y"}, {Name: "orientation_z"}, {Name: "orientation_w"}}
	for _, c := range []string{"orientation_covariance", "angular_velocity_covariance", "linear_acceleration_covariance"} {
		for i := 0; i < 9; i++ {
			chs = append(chs, signals.Channel{Name: fmt.Sprintf("%s_%d", c, i)})
		}
	}
	return chs
}()

// imuRest returns the values of the second track's channels.
func imuRest(m *ros2.Imu, dst []float64) {
	q := m.Orientation
	dst[0], dst[1], dst[2], dst[3] = q.X, q.Y, q.Z, q.W
	copy(dst[4:13], m.OrientationCovariance[:])
	copy(dst[13:22], m.AngularVelocityCovariance[:])
	copy(dst[22:31], m.LinearAccelerationCovariance[:])
}

// setImuRest sets what imuRest gave back into m.
func setImuRest(m *ros2.Imu, v []float64) {
	m.Orientation = ros2.Quaternion{X: v[0], Y: v[1], Z: v[2], W: v[3]}
	copy(m.OrientationCovariance[:], v[4:13])
	copy(m.AngularVelocityCovariance[:], v[13:22])
	copy(m.LinearAccelerationCovariance[:], v[22:31])
}

// trackMetaPrefix starts the name of a track that carries a trackMeta.
const trackMetaPrefix = "mcap:"

func (m *trackMeta) trackName() string {
	b, _ := json.Marshal(m)
	return trackMetaPrefix + string(b)
}

// parseTrackMeta reads a track name written by trackName; nil if it is not one.
func parseTrackMeta(name string) *trackMeta {
	rest, ok := strings.CutPrefix(name, trackMetaPrefix)
	if !ok {
		return nil
	}
	var m trackMeta
	if json.Unmarshal([]byte(rest), &m) != nil {
		return nil
	}
	return &m
}

func (m *trackMeta) schemaBytes() []byte {
	if m.SchemaBase64 != "" {
		b, _ := base64.StdEncoding.DecodeString(m.SchemaBase64)
		return b
	}
	return []byte(m.Schema)
}

// mcapKind is what a topic becomes.
type mcapKind int

const (
	kindOpaque mcapKind = iota
	kindLidar
	kindIMU
	kindScalar
	kindVideo
	kindImage
	kindImuRest // export: an IMU topic's second track
)

func (k mcapKind) String() string {
	return [...]string{"opaque", "LIDAR", "IMU", "scalar", "video", "image", "IMU orientation"}[k]
}

// kindOf decides what a channel's messages become.
func kindOf(ch *mcap.Channel, s *mcap.Schema) (mcapKind, string, string) {
	if s == nil {
		return kindOpaque, "", ""
	}
	name := ros2.TypeName(s.Name)
	switch {
	case ch.MessageEncoding == "protobuf" && s.Name == ros2.CompressedVideoProtoName:
		return kindVideo, "", ""
	case ch.MessageEncoding != "cdr" || (s.Encoding != "ros2msg" && s.Encoding != "ros2idl" && s.Encoding != "omgidl"):
		// The CDR layout of a known type is the same whatever language
		// its schema is written in; ros2idl and omgidl name it pkg::msg::Type.
		return kindOpaque, "", ""
	case name == ros2.PointCloud2Name:
		return kindLidar, "", ""
	case name == ros2.ImuName:
		return kindIMU, "", ""
	case name == ros2.CompressedImageName:
		return kindImage, "", ""
	case name == ros2.CompressedVideoName:
		return kindVideo, "", ""
	}
	if s.Encoding != "ros2msg" {
		return kindOpaque, "", ""
	}
	if typ, field := ros2.ScalarOf(string(s.Data)); typ != "" {
		return kindScalar, typ, field
	}
	return kindOpaque, "", ""
}

// mcapImport is one import's state.
type mcapImport struct {
	ctx        context.Context
	c          *sdk.Client
	nc         *nats.Conn
	path       string
	prefix     string
	retention  int
	resolution float64
	topics     map[uint16]*topicSink
	patterns   []string        // --topics; none: every topic
	skip       map[uint16]bool // channels --topics leaves out
	skipped    []string
	order      []*topicSink
	created    []string

	mu      sync.Mutex // guards refused, from the producers' event goroutines
	refused []string
}

// topicSink puts one channel's messages into its stream.
type topicSink struct {
	imp     *mcapImport
	ch      *mcap.Channel
	kind    mcapKind
	stream  string
	meta    trackMeta
	p       *sdk.Producer
	pending []byte // IMU and scalar: the first message, held until the second gives the rate
	pendAt  int64
	pendSet bool

	lidar     *signals.PointCloud
	layout    *pointLayout
	au        []byte // video: the access unit in AVC form
	pipe      *lidarPipe
	sweep     codecs.Sweep
	samples   signals.Samples
	rest      signals.Samples // IMU: the second track's sample
	imu       ros2.Imu
	messages  int64
	skipped   int64 // video before the first key frame, points without a return
	persisted int64
	last      int64
}

func importMCAP(cmd *cobra.Command, c *sdk.Client, path, stream string) error {
	if stream != "" {
		return usagef("import %s: an MCAP file's topics go to streams of their own, <--stream-prefix><topic>: use --stream-prefix, not --stream", path)
	}
	o := mcapImportOpts
	if !(o.resolution >= 1e-6 && o.resolution <= 1) {
		return usagef("--lidar-resolution %v: want 1e-6 to 1 m", o.resolution)
	}
	retention, _ := cmd.Flags().GetInt("retention-hours")
	if retention < 0 {
		return usagef("--retention-hours %d is negative", retention)
	}
	for _, p := range o.topics {
		if _, err := topicMatch(p, ""); err != nil || p == "" {
			return usagef("--topics %q is not a topic or a pattern", p)
		}
	}
	nurl, err := natsURLFor(cmd)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := mcap.NewReader(f, mcap.Options{})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var opts []nats.Option
	profile, _ := cmd.Flags().GetString("profile")
	creds, err := sdk.LoadCredentials(profile)
	if err != nil {
		return usagef("--profile: %v", err)
	}
	if creds != nil {
		opts = creds.NATSOptions()
	}
	nc, err := nats.Connect(nurl, append(opts, nats.Name("sensorium-import"))...)
	if err != nil {
		return fmt.Errorf("connect to NATS at %s (--nats): %w", nurl, err)
	}
	defer nc.Close()
	imp := &mcapImport{ctx: cmd.Context(), c: c, nc: nc, path: path, prefix: mcapImportOpts.prefix, retention: retention,
		resolution: o.resolution, topics: map[uint16]*topicSink{}, patterns: o.topics, skip: map[uint16]bool{}}
	start := time.Now()
	runErr := imp.run(r)
	if runErr != nil {
		imp.finishPipes()
	}
	closeErr := imp.closeAll()
	if runErr != nil {
		return runErr
	}
	if closeErr != nil {
		return closeErr
	}
	if len(imp.refused) > 0 {
		return fmt.Errorf("%s: the server refused fragments: %s", path, strings.Join(imp.refused, "; "))
	}
	out := cmd.OutOrStdout()
	var msgs int64
	for _, t := range imp.order {
		msgs += t.messages
	}
	fmt.Fprintf(out, "%s: %d messages on %d topics (%s) stored in %s\n", path, msgs, len(imp.order), humanBytes(int64(r.Offset())), time.Since(start).Round(time.Millisecond))
	for _, t := range imp.order {
		note := ""
		if t.skipped > 0 {
			note = fmt.Sprintf(", %d skipped (see docs/MCAP.md)", t.skipped)
		}
		fmt.Fprintf(out, "  %s → %s (%s): %d messages, %d fragments%s\n", t.ch.Topic, t.stream, t.kind, t.messages, t.persisted, note)
	}
	if len(imp.created) > 0 {
		fmt.Fprintf(out, "  created streams: %s\n", strings.Join(imp.created, ", "))
	}
	if len(imp.skipped) > 0 {
		fmt.Fprintf(out, "  topics left out (--topics): %s\n", strings.Join(imp.skipped, ", "))
	}
	return nil
}

func (imp *mcapImport) run(r *mcap.Reader) error {
	for {
		m, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", imp.path, err)
		}
		t := imp.topics[m.ChannelID]
		if t == nil {
			if imp.skip[m.ChannelID] {
				continue
			}
			ch := r.Channel(m.ChannelID)
			if !imp.wanted(ch.Topic) {
				imp.skip[m.ChannelID] = true
				imp.skipped = append(imp.skipped, ch.Topic)
				continue
			}
			if t, err = imp.newSink(ch, r.Schema(ch.SchemaID)); err != nil {
				return err
			}
			imp.topics[m.ChannelID] = t
		}
		if m.LogTime > math.MaxInt64 {
			return fmt.Errorf("%s: topic %s: log time %d is beyond 2262", imp.path, t.ch.Topic, m.LogTime)
		}
		if err := t.put(int64(m.LogTime), m.Data); err != nil {
			return fmt.Errorf("%s: topic %s (message %d, log time %s): %w", imp.path, t.ch.Topic, t.messages+1,
				time.Unix(0, int64(m.LogTime)).UTC().Format(time.RFC3339Nano), err)
		}
		t.messages++
	}
	for _, t := range imp.order {
		if err := t.flushPending(); err != nil {
			return fmt.Errorf("%s: topic %s: %w", imp.path, t.ch.Topic, err)
		}
	}
	return imp.finishPipes()
}

// finishPipes waits for the LIDAR encoders to put every sweep.
func (imp *mcapImport) finishPipes() error {
	var errs []error
	for _, t := range imp.order {
		if t.pipe != nil {
			if err := t.pipe.finish(); err != nil {
				errs = append(errs, fmt.Errorf("%s: topic %s: %w", imp.path, t.ch.Topic, err))
			}
		}
	}
	return errors.Join(errs...)
}

// topicMatch matches a topic against a --topics pattern: "/" separates
// levels, as in a path.
func topicMatch(pattern, topic string) (bool, error) { return path.Match(pattern, topic) }

// wanted says whether --topics takes topic.
func (imp *mcapImport) wanted(topic string) bool {
	if len(imp.patterns) == 0 {
		return true
	}
	for _, p := range imp.patterns {
		if ok, _ := topicMatch(p, topic); ok {
			return true
		}
	}
	return false
}

func (imp *mcapImport) newSink(ch *mcap.Channel, s *mcap.Schema) (*topicSink, error) {
	kind, typ, field := kindOf(ch, s)
	t := &topicSink{imp: imp, ch: ch, kind: kind, stream: streamNameOf(imp.prefix, ch.Topic)}
	t.meta = trackMeta{Topic: ch.Topic, MessageEncoding: ch.MessageEncoding, Metadata: ch.Metadata, ScalarType: typ, ScalarField: field}
	if s != nil {
		t.meta.SchemaName, t.meta.SchemaEncoding = s.Name, s.Encoding
		if utf8.Valid(s.Data) {
			t.meta.Schema = string(s.Data)
		} else {
			t.meta.SchemaBase64 = base64.StdEncoding.EncodeToString(s.Data)
		}
	}
	if len(t.meta.Metadata) == 0 {
		t.meta.Metadata = nil
	}
	if kind != kindOpaque {
		// Mapped kinds are written back from Sensorium's own model; the
		// schema is the one export writes, so it need not travel.
		t.meta.Schema, t.meta.SchemaBase64 = "", ""
	}
	imp.order = append(imp.order, t)
	return t, nil
}

// ensureStream creates the stream if it does not exist.
func (imp *mcapImport) ensureStream(name string) error {
	_, err := imp.c.DescribeStream(imp.ctx, sdk.ByName(name))
	if err == nil {
		return nil
	}
	if !errors.Is(err, httpwire.ErrResourceNotFound) {
		return fmt.Errorf("describe stream %s: %w", name, err)
	}
	if _, err := imp.c.CreateStream(imp.ctx, sdk.CreateStreamInput{StreamName: name, DataRetentionInHours: imp.retention}); err != nil {
		return fmt.Errorf("create stream %s: %w", name, err)
	}
	imp.created = append(imp.created, name)
	return nil
}

// open makes the topic's stream and producer with its one track.
func (t *topicSink) open(tracks ...sdk.Track) error {
	if err := t.imp.ensureStream(t.stream); err != nil {
		return err
	}
	p, err := sdk.NewProducer(t.imp.ctx, t.imp.nc, sdk.ProducerConfig{
		Stream: t.stream, Tracks: tracks, NoLive: true,
		// A bulk import: fragments as large as the bus takes (fewer
		// fsyncs and round trips; NewProducer shrinks it to the server's
		// max_payload) and a deep buffer, so reading never waits for a
		// PERSISTED while the bus has room.
		MaxFragmentSize: sdk.MaxMessageFragmentSize, BufferBytes: 256 << 20,
		OnAck: func(ev sdk.AckEvent) {
			switch {
			case ev.EventType == sdk.EventPersisted:
				t.persisted++
			case ev.EventType == sdk.EventError && !ev.Retriable:
				t.imp.mu.Lock()
				t.imp.refused = append(t.imp.refused, fmt.Sprintf("%s: %s (%s)", t.stream, ev.Message, ev.ErrorCode))
				t.imp.mu.Unlock()
			}
		},
	})
	if err != nil {
		return fmt.Errorf("producer for %s: %w", t.stream, err)
	}
	t.p = p
	return nil
}

// closeAll flushes and closes every producer: each waits for its
// fragments' PERSISTED.
func (imp *mcapImport) closeAll() error {
	var errs []error
	for _, t := range imp.order {
		if t.p == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(imp.ctx), 2*time.Minute)
		if err := t.p.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: stream %s: %w", imp.path, t.stream, err))
		}
		cancel()
	}
	return errors.Join(errs...)
}

func (t *topicSink) put(at int64, data []byte) error {
	switch t.kind {
	case kindLidar:
		return t.putLidar(at, data)
	case kindIMU, kindScalar:
		return t.putSampled(at, data)
	case kindVideo:
		return t.putVideo(at, data)
	case kindImage:
		return t.putImage(at, data)
	}
	if t.p == nil {
		track, err := sdk.OpaqueTrack(1, t.meta.trackName(), opaqueMediaType(t.ch.MessageEncoding))
		if err != nil {
			return err
		}
		if err := t.open(track); err != nil {
			return err
		}
	}
	return t.p.PutOpaque(t.imp.ctx, 1, at, 0, data, true)
}

// opaqueMediaType names the media type of an unmapped topic's frames by
// its message encoding.
func opaqueMediaType(enc string) string {
	switch enc {
	case "json":
		return "application/json"
	case "protobuf":
		return "application/x-protobuf"
	case "cdr":
		return "application/x-cdr"
	case "ros1":
		return "application/x-ros1"
	case "cbor":
		return "application/cbor"
	case "msgpack":
		return "application/msgpack"
	case "flatbuffer":
		return "application/x-flatbuffer"
	}
	return "application/octet-stream"
}

// putImage puts a CompressedImage's bytes as an image frame of its format.
func (t *topicSink) putImage(at int64, data []byte) error {
	m, err := ros2.DecodeCompressedImage(data)
	if err != nil {
		return err
	}
	if strings.EqualFold(m.Format, "h264") {
		// H.264 carried in CompressedImage, as some drivers send it:
		// video, written back as CompressedImage (trackMeta.SchemaName).
		return t.putVideoFrame(at, ros2.CompressedVideo{FrameID: m.Header.FrameID, Data: m.Data, Format: m.Format})
	}
	if t.p == nil {
		t.meta.FrameID, t.meta.Format = m.Header.FrameID, m.Format
		track, err := sdk.OpaqueTrack(1, t.meta.trackName(), imageMediaType(m.Format))
		if err != nil {
			return err
		}
		if err := t.open(track); err != nil {
			return err
		}
	}
	return t.p.PutOpaque(t.imp.ctx, 1, at, 0, m.Data, true)
}

// imageMediaType maps a CompressedImage format ("jpeg", "png",
// "rgb8; jpeg compressed bgr8") to a media type.
func imageMediaType(format string) string {
	f := strings.ToLower(format)
	switch {
	case strings.Contains(f, "png"):
		return "image/png"
	case strings.Contains(f, "jpeg"), strings.Contains(f, "jpg"):
		return "image/jpeg"
	case strings.Contains(f, "webp"):
		return "image/webp"
	}
	return "application/octet-stream"
}

// putVideo puts an H.264 CompressedVideo frame as an access unit of a video
// track, which is made at the first frame that carries the SPS and PPS;
// frames before it cannot be decoded and are skipped. Other formats (H.265,
// VP9, AV1) become opaque frames.
func (t *topicSink) putVideo(at int64, data []byte) error {
	var m ros2.CompressedVideo
	var err error
	if t.ch.MessageEncoding == "protobuf" {
		m, err = ros2.DecodeCompressedVideoProto(data)
	} else {
		m, err = ros2.DecodeCompressedVideo(data)
	}
	if err != nil {
		return err
	}
	return t.putVideoFrame(at, m)
}

// putVideoFrame puts one frame of a video topic.
func (t *topicSink) putVideoFrame(at int64, m ros2.CompressedVideo) error {
	if !strings.EqualFold(m.Format, "h264") {
		if t.p == nil {
			t.meta.FrameID, t.meta.Format = m.FrameID, m.Format
			track, err := sdk.OpaqueTrack(1, t.meta.trackName(), "video/"+strings.ToLower(m.Format))
			if err != nil {
				return err
			}
			if err := t.open(track); err != nil {
				return err
			}
		}
		return t.p.PutOpaque(t.imp.ctx, 1, at, 0, m.Data, true)
	}
	au, key := avcOf(t.au[:0], m.Data)
	t.au = au
	if t.p == nil {
		if !key {
			t.skipped++
			return nil
		}
		// The avcC record from the first key frame's SPS and PPS, as
		// SplitAnnexB builds it (with the High profiles' fields).
		_, avcC, err := sdk.SplitAnnexB(m.Data)
		if err != nil {
			return fmt.Errorf("H.264 key frame: %w", err)
		}
		t.meta.FrameID, t.meta.Format = m.FrameID, m.Format
		w, h := spsSize(avcC)
		track, err := sdk.H264Track(1, t.meta.trackName(), avcC, w, h)
		if err != nil {
			return err
		}
		if err := t.open(track); err != nil {
			return err
		}
	}
	if len(au) == 0 {
		t.skipped++
		return nil
	}
	return t.p.PutH264(t.imp.ctx, 1, at, 0, au, key)
}

// putSampled puts an IMU or one-number message as one sample at its log
// time. The track's nominal rate comes from the first two messages'
// interval, so the first is held until the second arrives.
func (t *topicSink) putSampled(at int64, data []byte) error {
	if t.p == nil {
		if !t.pendSet {
			t.pending, t.pendAt, t.pendSet = slices.Clone(data), at, true
			return nil
		}
		rate := 1.0
		if dt := at - t.pendAt; dt > 0 {
			rate = min(max(1e9/float64(dt), signals.MinSampleRate), signals.MaxSampleRate)
		}
		if err := t.openSampled(rate); err != nil {
			return err
		}
		if err := t.putSample(t.pendAt, t.pending); err != nil {
			return err
		}
		t.pending = nil
	}
	return t.putSample(at, data)
}

// flushPending puts a held first message of a topic that had only one.
func (t *topicSink) flushPending() error {
	if t.p != nil || !t.pendSet {
		return nil
	}
	if err := t.openSampled(1); err != nil {
		return err
	}
	return t.putSample(t.pendAt, t.pending)
}

func (t *topicSink) openSampled(rate float64) error {
	var track sdk.Track
	var err error
	if t.kind == kindIMU {
		var m ros2.Imu
		if err := ros2.DecodeImu(t.pending, &m); err != nil {
			return err
		}
		t.meta.FrameID = m.Header.FrameID
		// ROS says "no orientation" with orientation_covariance[0] = -1
		// and "unknown covariance" with zeros: the second track is kept
		// only when the first message has more than that.
		rest := make([]float64, len(imuRestChannels))
		imuRest(&m, rest)
		t.meta.ImuRest = m.OrientationCovariance[0] != -1 || slices.ContainsFunc(rest[13:], func(v float64) bool { return v != 0 })
		track, err = sdk.IMUTrack(1, t.meta.trackName(), &signals.IMU{SampleRate: rate, SampleType: signals.Float64,
			Sensors: []signals.IMUSensor{{Type: signals.Accelerometer, Unit: "m/s²"}, {Type: signals.Gyroscope, Unit: "rad/s"}}})
		t.samples.Reset(signals.Float64, 6, 1)
		if err == nil && t.meta.ImuRest {
			rm := trackMeta{Topic: t.meta.Topic, ImuRest: true}
			restTrack, err := sdk.ScalarTrack(2, rm.trackName(), &signals.Scalar{SampleRate: rate, SampleType: signals.Float64, Channels: imuRestChannels})
			if err != nil {
				return err
			}
			t.rest.Reset(signals.Float64, len(imuRestChannels), 1)
			return t.open(track, restTrack)
		}
	} else {
		st := scalarSampleType(t.meta.ScalarType)
		track, err = sdk.ScalarTrack(1, t.meta.trackName(), &signals.Scalar{SampleRate: rate, SampleType: st,
			Channels: []signals.Channel{{Name: t.meta.ScalarField}}})
		t.samples.Reset(st, 1, 1)
	}
	if err != nil {
		return err
	}
	return t.open(track)
}

// scalarSampleType is the sample type that holds a ROS number exactly,
// or float64 (exact to 2^53) for the 64-bit integers and uint32.
func scalarSampleType(typ string) signals.SampleType {
	switch typ {
	case "int8", "uint8", "byte", "int16":
		return signals.Int16
	case "uint16", "int32":
		return signals.Int32
	case "float32":
		return signals.Float32
	}
	return signals.Float64
}

func (t *topicSink) putSample(at int64, data []byte) error {
	s := &t.samples
	s.Start = at
	if t.kind == kindIMU {
		if err := ros2.DecodeImu(data, &t.imu); err != nil {
			return err
		}
		a, g := t.imu.LinearAcceleration, t.imu.AngularVelocity
		s.F64[0], s.F64[1], s.F64[2], s.F64[3], s.F64[4], s.F64[5] = a.X, a.Y, a.Z, g.X, g.Y, g.Z
		if t.meta.ImuRest {
			if err := t.p.PutSamples(t.imp.ctx, 1, nil, s, codecs.Plain); err != nil {
				return err
			}
			t.rest.Start = at
			imuRest(&t.imu, t.rest.F64)
			return t.p.PutSamples(t.imp.ctx, 2, nil, &t.rest, codecs.Plain)
		}
	} else {
		v, err := ros2.DecodeScalar(data, t.meta.ScalarType)
		if err != nil {
			return err
		}
		switch s.Type {
		case signals.Int16:
			s.I16[0] = int16(v)
		case signals.Int32:
			s.I32[0] = int32(v)
		case signals.Float32:
			s.F32[0] = float32(v)
		default:
			s.F64[0] = v
		}
	}
	// One sample a frame keeps each message's log time exact; Plain, since
	// no codec finds structure in one sample, and searching them costs.
	return t.p.PutSamples(t.imp.ctx, 1, nil, s, codecs.Plain)
}
