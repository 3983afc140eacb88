package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/mcap"
	"github.com/sensorium-io/sensorium/mcap/ros2"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
)

// sensorium export: streams to an MCAP file (docs/MCAP.md, "Export").

func init() { registerCommand(newExportCmd) }

func newExportCmd() *cobra.Command {
	var startS, endS, out, compression string
	var chunkSize int
	cmd := &cobra.Command{
		Use:   "export STREAM... --start TIME --end TIME -o FILE.mcap",
		Short: "Write streams' data between two producer times to an MCAP file that Foxglove opens",
		Long: `Write the frames of one or more streams whose producer time is in
[--start, --end] to a chunked, indexed MCAP file (zstd or lz4 chunks, CRCs,
summary) with ROS 2 schemas: LIDAR as sensor_msgs/PointCloud2, IMU as
sensor_msgs/Imu, scalar signals as std_msgs numbers (one topic per channel),
H.264 video as foxglove_msgs/CompressedVideo, images as
sensor_msgs/CompressedImage, and the opaque frames of an MCAP import with the
topic, encoding and schema they came with. Log and publish times are the
producer times. A track of another kind (audio, RADAR, arrays) is left out,
saying so. Streams are read one after the other through GetMedia, so memory
stays bounded whatever the range; readers order messages by the file's index.`,
		Example: `  sensorium export lidar imu cam --start 2026-11-24T12:00:00Z --end 2026-11-24T12:05:00Z -o run.mcap
  sensorium export robot1.velodyne_points --start -10m --end now -o last.mcap --compression lz4`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("%s takes one or more stream names (see %s --help)", cmd.CommandPath(), cmd.CommandPath())
			}
			return nil
		},
	}
	client := addEndpoint(cmd)
	f := cmd.Flags()
	f.StringVar(&startS, "start", "", "producer time of the first frame (RFC 3339, -1h, Unix seconds)")
	f.StringVar(&endS, "end", "now", "producer time of the last frame")
	f.StringVarP(&out, "output", "o", "", "the MCAP file to write (- for stdout)")
	f.StringVar(&compression, "compression", "zstd", "chunk compression: zstd, lz4 or none")
	f.IntVar(&chunkSize, "chunk-size", mcap.DefaultChunkSize, "uncompressed bytes at which a chunk is closed")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if startS == "" {
			return usagef("--start is required")
		}
		if out == "" {
			return usagef("-o is required: the MCAP file to write")
		}
		if out != "-" && !strings.EqualFold(filepath.Ext(out), ".mcap") {
			return usagef("-o %s: export writes MCAP; name the file .mcap", out)
		}
		switch compression {
		case "zstd", "lz4", "none":
		default:
			return usagef("--compression %q: want zstd, lz4 or none", compression)
		}
		if chunkSize < 1024 {
			return usagef("--chunk-size %d: want at least 1024 bytes", chunkSize)
		}
		now := time.Now()
		start, err := parseTime(startS, now)
		if err != nil {
			return usagef("--start: %v", err)
		}
		end, err := parseTime(endS, now)
		if err != nil {
			return usagef("--end: %v", err)
		}
		if end.Before(start) {
			return usagef("--end %s is before --start %s", end.Format(time.RFC3339Nano), start.Format(time.RFC3339Nano))
		}
		c, err := client()
		if err != nil {
			return err
		}
		var w io.Writer = cmd.OutOrStdout()
		var file *os.File
		if out != "-" {
			if file, err = os.Create(out); err != nil {
				return err
			}
			defer file.Close()
			w = file
		}
		ex, err := newMCAPExport(w, compression, chunkSize)
		if err != nil {
			return err
		}
		for _, s := range args {
			if err := ex.stream(cmd.Context(), c, s, start.UnixNano(), end.UnixNano()); err != nil {
				if file != nil {
					file.Close()
					os.Remove(out)
				}
				return err
			}
		}
		if err := ex.w.Close(); err != nil {
			return err
		}
		if file != nil {
			if err := file.Close(); err != nil {
				return err
			}
		}
		for _, n := range ex.notes {
			fmt.Fprintln(cmd.ErrOrStderr(), "sensorium export: "+n)
		}
		if out != "-" {
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d messages on %d topics from %d streams (%s)\n", out, ex.messages, len(ex.channels), len(args), humanBytes(int64(ex.w.Offset())))
		}
		return nil
	}
	return cmd
}

// mcapExport writes frames as MCAP messages.
type mcapExport struct {
	w        *mcap.Writer
	schemas  map[string]uint16 // name \x00 encoding \x00 data → id
	channels map[string]*exportChannel
	messages int64
	notes    []string
	buf      []byte
	samples  signals.Samples
	sweep    codecs.Sweep
	// An Imu message waiting for its orientation and covariances, which
	// come in the frame after it (the import's second track).
	held   ros2.Imu
	heldCh *exportChannel
	heldT  int64
}

// exportChannel is one MCAP channel: a track (or, for a scalar track, one
// of its channels).
type exportChannel struct {
	id      uint16
	seq     uint32
	kind    mcapKind
	meta    *trackMeta
	lidar   *signals.PointCloud
	scalar  *signals.Scalar
	typ     string // one-number messages: the field type
	channel int    // scalar: which channel
	nalLen  int    // video: bytes of each NAL length
}

func newMCAPExport(w io.Writer, compression string, chunk int) (*mcapExport, error) {
	mw, err := mcap.NewWriter(w, mcap.WriterOptions{Profile: "ros2", Compression: compression, ChunkSize: chunk})
	if err != nil {
		return nil, err
	}
	return &mcapExport{w: mw, schemas: map[string]uint16{}, channels: map[string]*exportChannel{}}, nil
}

func (ex *mcapExport) schema(name, encoding string, data []byte) (uint16, error) {
	key := name + "\x00" + encoding + "\x00" + string(data)
	if id, ok := ex.schemas[key]; ok {
		return id, nil
	}
	id := uint16(len(ex.schemas) + 1)
	if err := ex.w.AddSchema(mcap.Schema{ID: id, Name: name, Encoding: encoding, Data: data}); err != nil {
		return 0, err
	}
	ex.schemas[key] = id
	return id, nil
}

// stream exports one stream's frames in [start, end].
func (ex *mcapExport) stream(ctx context.Context, c *sdk.Client, name string, start, end int64) (rerr error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	body, err := c.GetMedia(ctx, sdk.ByName(name), sdk.StartAtProducerTime(time.Unix(0, start)), false)
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	defer body.Close()
	mr := sdk.NewMediaReader(body)
	skipped := map[string]bool{}
	defer func() {
		if err := ex.flushHeld(); err != nil && rerr == nil {
			rerr = err
		}
	}()
	for {
		fr, err := mr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		var ce *sdk.ChunkError
		if errors.As(err, &ce) {
			ex.notes = append(ex.notes, fmt.Sprintf("stream %s: %v", name, ce))
			continue
		}
		if err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		if fr.Fragment != nil && fr.Fragment.ProducerTimestamp.UnixNano() > end {
			return nil // GetMedia goes on to the stream's end; the range is done
		}
		if err := ex.frame(name, fr, start, end, skipped); err != nil {
			return fmt.Errorf("stream %s: frame at %s: %w", name, time.Unix(0, fr.Timestamp).UTC().Format(time.RFC3339Nano), err)
		}
	}
}

// channelFor finds or makes the channel of a track (and scalar channel k).
func (ex *mcapExport) channelFor(stream string, tr *sdkTrack, k int) (*exportChannel, error) {
	key := fmt.Sprintf("%s\x00%d\x00%s\x00%x\x00%d", stream, tr.Number, tr.CodecID, tr.CodecPrivate, k)
	if ch := ex.channels[key]; ch != nil {
		return ch, nil
	}
	meta := parseTrackMeta(tr.Name)
	topic := "/" + stream
	if meta != nil {
		topic = meta.Topic
	} else if tr.Number > 1 {
		topic += fmt.Sprintf("/track%d", tr.Number)
	}
	ch := &exportChannel{id: uint16(len(ex.channels) + 1), meta: meta}
	var sname, senc, menc string
	var sdata []byte
	frameID := ""
	if meta != nil {
		frameID = meta.FrameID
	}
	desc, err := signals.ParseDescription(tr.CodecID, tr.CodecPrivate)
	switch {
	case tr.CodecID == signals.CodecIDPointCloud && err == nil:
		ch.kind, ch.lidar = kindLidar, desc.(*signals.PointCloud)
		sname, senc, menc, sdata = ros2.PointCloud2Name, "ros2msg", "cdr", []byte(ros2.PointCloud2Schema)
	case tr.CodecID == signals.CodecIDIMU && err == nil:
		ch.kind, ch.scalar = kindIMU, desc.(*signals.IMU).Scalar()
		sname, senc, menc, sdata = ros2.ImuName, "ros2msg", "cdr", []byte(ros2.ImuSchema)
	case tr.CodecID == signals.CodecIDScalar && err == nil && meta != nil && meta.ImuRest:
		// An IMU topic's second track: it fills the Imu messages of
		// track 1 and has no channel of its own.
		ch.kind, ch.scalar = kindImuRest, desc.(*signals.Scalar)
		if len(ch.scalar.Channels) != len(imuRestChannels) {
			return nil, fmt.Errorf("track %d: %d channels; an IMU topic's second track has %d", tr.Number, len(ch.scalar.Channels), len(imuRestChannels))
		}
		ex.channels[key] = ch
		return ch, nil
	case tr.CodecID == signals.CodecIDScalar && err == nil:
		ch.kind, ch.scalar, ch.channel = kindScalar, desc.(*signals.Scalar), k
		ch.typ = map[signals.SampleType]string{signals.Int16: "int16", signals.Int32: "int32", signals.Float32: "float32", signals.Float64: "float64"}[ch.scalar.SampleType]
		if meta != nil && meta.ScalarType != "" {
			ch.typ = meta.ScalarType
		} else if len(ch.scalar.Channels) > 1 {
			topic += "/" + ch.scalar.Channels[k].Name
		}
		var text string
		sname, text = ros2.ScalarSchema(ch.typ)
		if meta != nil && meta.SchemaName != "" && meta.ScalarField != "" {
			sname, text = meta.SchemaName, ch.typ+" "+meta.ScalarField+"\n"
		}
		senc, menc, sdata = "ros2msg", "cdr", []byte(text)
	case tr.CodecID == signals.CodecIDH264 && err == nil && meta != nil && ros2.TypeName(meta.SchemaName) == ros2.CompressedImageName:
		// H.264 that came in CompressedImage goes back in it.
		ch.kind, ch.nalLen = kindImage, desc.(*signals.Video).NALLengthSize()
		sname, senc, menc, sdata = ros2.CompressedImageName, "ros2msg", "cdr", []byte(ros2.CompressedImageSchema)
	case tr.CodecID == signals.CodecIDH264 && err == nil:
		ch.kind, ch.nalLen = kindVideo, desc.(*signals.Video).NALLengthSize()
		sname, senc, menc, sdata = ros2.CompressedVideoName, "ros2msg", "cdr", []byte(ros2.CompressedVideoSchema)
	case tr.CodecID == signals.CodecIDOpaque && err == nil:
		mt := desc.(*signals.Opaque).MediaType
		switch {
		case meta != nil && meta.Format != "" && strings.HasPrefix(mt, "image/"):
			ch.kind = kindImage
			sname, senc, menc, sdata = ros2.CompressedImageName, "ros2msg", "cdr", []byte(ros2.CompressedImageSchema)
		case meta != nil && meta.Format != "" && strings.HasPrefix(mt, "video/"):
			ch.kind = kindVideo
			sname, senc, menc, sdata = ros2.CompressedVideoName, "ros2msg", "cdr", []byte(ros2.CompressedVideoSchema)
		case meta != nil:
			ch.kind = kindOpaque
			sname, senc, menc, sdata = meta.SchemaName, meta.SchemaEncoding, meta.MessageEncoding, meta.schemaBytes()
		case strings.HasPrefix(mt, "image/jpeg"), strings.HasPrefix(mt, "image/png"):
			ch.kind = kindImage
			ch.meta = &trackMeta{Format: strings.TrimPrefix(mt, "image/")}
			sname, senc, menc, sdata = ros2.CompressedImageName, "ros2msg", "cdr", []byte(ros2.CompressedImageSchema)
		default:
			ch.kind = kindOpaque
			menc = map[string]string{"application/json": "json", "application/x-protobuf": "protobuf", "application/cbor": "cbor"}[mt]
			if menc == "" {
				menc = mt
			}
		}
	default:
		return nil, nil
	}
	if ch.meta == nil {
		ch.meta = &trackMeta{}
	}
	ch.meta.FrameID = frameID
	var sid uint16
	if senc != "" || len(sdata) > 0 || sname != "" {
		if sid, err = ex.schema(sname, senc, sdata); err != nil {
			return nil, err
		}
	}
	var md map[string]string
	if meta != nil {
		md = meta.Metadata
	}
	if err := ex.w.AddChannel(mcap.Channel{ID: ch.id, SchemaID: sid, Topic: topic, MessageEncoding: menc, Metadata: md}); err != nil {
		return nil, err
	}
	ex.channels[key] = ch
	return ch, nil
}

type sdkTrack struct {
	Number       uint64
	Name         string
	CodecID      string
	CodecPrivate []byte
}

func (ex *mcapExport) write(ch *exportChannel, t int64, data []byte) error {
	ch.seq++
	ex.messages++
	return ex.w.WriteMessage(&mcap.Message{ChannelID: ch.id, Sequence: ch.seq, LogTime: uint64(t), PublishTime: uint64(t), Data: data})
}

// frame writes the messages of one frame that fall in [start, end].
func (ex *mcapExport) frame(stream string, fr *sdk.MediaFrame, start, end int64, skipped map[string]bool) error {
	tr := &sdkTrack{Number: fr.Track.Number, Name: fr.Track.Name, CodecID: fr.Track.CodecID, CodecPrivate: fr.Track.CodecPrivate}
	ch, err := ex.channelFor(stream, tr, 0)
	if err != nil {
		return err
	}
	if ch == nil {
		if !skipped[tr.CodecID] {
			skipped[tr.CodecID] = true
			ex.notes = append(ex.notes, fmt.Sprintf("stream %s: track %d (%s) left out: export writes LIDAR, IMU, scalar, video, image and opaque tracks", stream, tr.Number, tr.CodecID))
		}
		return nil
	}
	in := func(t int64) bool { return t >= start && t <= end }
	if ch.kind == kindImuRest {
		if err := codecs.DecodeScalarFrameAt(fr.Data, fr.Timestamp, ch.scalar, &ex.samples); err != nil {
			return err
		}
		s := &ex.samples
		for i := 0; i < s.N; i++ {
			if ex.heldCh != nil && ex.heldT == ch.scalar.SampleTime(s.Start, i) {
				setImuRest(&ex.held, s.F64[i*s.Channels:(i+1)*s.Channels])
				if err := ex.flushHeld(); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := ex.flushHeld(); err != nil {
		return err
	}
	switch ch.kind {
	case kindLidar:
		if err := codecs.DecodeSweepFrame(fr.Data, ch.lidar, &ex.sweep); err != nil {
			return err
		}
		if !in(ex.sweep.Time) {
			return nil
		}
		ex.buf = appendPointCloud2(ex.buf[:0], ch, &ex.sweep)
		return ex.write(ch, ex.sweep.Time, ex.buf)
	case kindIMU, kindScalar:
		if err := codecs.DecodeScalarFrameAt(fr.Data, fr.Timestamp, ch.scalar, &ex.samples); err != nil {
			return err
		}
		s := &ex.samples
		chans := []*exportChannel{ch}
		if ch.kind == kindScalar {
			for k := 1; k < s.Channels; k++ {
				c, err := ex.channelFor(stream, tr, k)
				if err != nil {
					return err
				}
				chans = append(chans, c)
			}
		}
		for i := 0; i < s.N; i++ {
			t := ch.scalar.SampleTime(s.Start, i)
			if !in(t) {
				continue
			}
			if ch.kind == kindIMU {
				v := func(k int) float64 { return s.Value(i*s.Channels + k) }
				m := ros2.Imu{Header: ros2.Header{Stamp: ros2.TimeOf(t), FrameID: ch.meta.FrameID},
					LinearAcceleration: ros2.Vector3{X: v(0), Y: v(1), Z: v(2)}, AngularVelocity: ros2.Vector3{X: v(3), Y: v(4), Z: v(5)}}
				m.Orientation.W = 1
				m.OrientationCovariance[0] = -1 // ROS: no orientation estimate
				if ch.meta.ImuRest && s.N == 1 {
					// The orientation and covariances follow in the
					// next frame, track 2's.
					ex.held, ex.heldCh, ex.heldT = m, ch, t
					continue
				}
				ex.buf = ros2.AppendImu(ex.buf[:0], &m)
				if err := ex.write(ch, t, ex.buf); err != nil {
					return err
				}
				continue
			}
			for k, c := range chans {
				ex.buf = ros2.AppendScalar(ex.buf[:0], c.typ, s.Value(i*s.Channels+k))
				if err := ex.write(c, t, ex.buf); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if !in(fr.Timestamp) {
		return nil
	}
	switch ch.kind {
	case kindVideo:
		data := fr.Data
		if fr.Track.CodecID == signals.CodecIDH264 {
			var err error
			if data, err = annexB(nil, fr.Data, ch.nalLen); err != nil {
				return err
			}
		}
		format := "h264"
		if ch.meta.Format != "" {
			format = ch.meta.Format
		}
		m := ros2.CompressedVideo{Timestamp: ros2.TimeOf(fr.Timestamp), FrameID: ch.meta.FrameID, Data: data, Format: format}
		ex.buf = ros2.AppendCompressedVideo(ex.buf[:0], &m)
		return ex.write(ch, fr.Timestamp, ex.buf)
	case kindImage:
		data := fr.Data
		if fr.Track.CodecID == signals.CodecIDH264 {
			var err error
			if data, err = annexB(nil, fr.Data, ch.nalLen); err != nil {
				return err
			}
		}
		m := ros2.CompressedImage{Header: ros2.Header{Stamp: ros2.TimeOf(fr.Timestamp), FrameID: ch.meta.FrameID}, Format: ch.meta.Format, Data: data}
		ex.buf = ros2.AppendCompressedImage(ex.buf[:0], &m)
		return ex.write(ch, fr.Timestamp, ex.buf)
	}
	return ex.write(ch, fr.Timestamp, fr.Data)
}

// flushHeld writes the held Imu message, if any.
func (ex *mcapExport) flushHeld() error {
	if ex.heldCh == nil {
		return nil
	}
	ch := ex.heldCh
	ex.heldCh = nil
	ex.buf = ros2.AppendImu(ex.buf[:0], &ex.held)
	return ex.write(ch, ex.heldT, ex.buf)
}

// annexB turns an access unit of length-prefixed NAL units into Annex B
// (start codes), as CompressedVideo carries H.264.
func annexB(dst, au []byte, lenSize int) ([]byte, error) {
	for len(au) > 0 {
		if len(au) < lenSize {
			return nil, fmt.Errorf("H.264 access unit: truncated NAL length")
		}
		var n uint64
		for _, b := range au[:lenSize] {
			n = n<<8 | uint64(b)
		}
		au = au[lenSize:]
		if n > uint64(len(au)) {
			return nil, fmt.Errorf("H.264 access unit: NAL of %d bytes, %d left", n, len(au))
		}
		dst = append(dst, 0, 0, 0, 1)
		dst = append(dst, au[:n]...)
		au = au[n:]
	}
	return dst, nil
}

// appendPointCloud2 writes a sweep as a PointCloud2: in the topic's
// original layout when it came from an MCAP import, else x, y, z
// (float32), intensity (int16), ring (uint16), time_offset (uint32 ns) and
// the extra fields.
func appendPointCloud2(dst []byte, ch *exportChannel, s *codecs.Sweep) []byte {
	d := ch.lidar
	fields := ch.meta.Fields
	step := ch.meta.PointStep
	if len(fields) == 0 {
		fields = []ros2.PointField{{Name: "x", Offset: 0, Datatype: ros2.Float32, Count: 1}, {Name: "y", Offset: 4, Datatype: ros2.Float32, Count: 1}, {Name: "z", Offset: 8, Datatype: ros2.Float32, Count: 1},
			{Name: "intensity", Offset: 12, Datatype: ros2.Int16, Count: 1}, {Name: "ring", Offset: 14, Datatype: ros2.Uint16, Count: 1}, {Name: "time_offset", Offset: 16, Datatype: ros2.Uint32, Count: 1}}
		step = 20
		for _, e := range d.Extra {
			dt := map[signals.SampleType]uint8{signals.Int16: ros2.Int16, signals.Int32: ros2.Int32, signals.Float32: ros2.Float32, signals.Float64: ros2.Float64}[e.Type]
			fields = append(fields, ros2.PointField{Name: e.Name, Offset: step, Datatype: dt, Count: 1})
			step += uint32(ros2.FieldSize(dt))
		}
	}
	// Which extra column holds each field (element): by the import's naming.
	extraOf := map[string]int{}
	for i, e := range d.Extra {
		extraOf[e.Name] = i
	}
	n := len(s.Points)
	data := make([]byte, n*int(step))
	for i := range s.Points {
		p := &s.Points[i]
		pt := data[i*int(step):]
		for _, f := range fields {
			for k := uint32(0); k < max(f.Count, 1); k++ {
				name := f.Name
				if f.Count > 1 {
					name = fmt.Sprintf("%s[%d]", f.Name, k)
				}
				var v float64
				switch {
				case f.Count <= 1 && name == "x":
					v = float64(p.X)
				case f.Count <= 1 && name == "y":
					v = float64(p.Y)
				case f.Count <= 1 && name == "z":
					v = float64(p.Z)
				case f.Count <= 1 && name == "intensity":
					v = float64(p.Intensity)
					if j, ok := extraOf["ros.intensity"]; ok {
						v = columnValue(&s.Extra[j], i)
					}
				case f.Count <= 1 && name == "ring" && f.Datatype != ros2.Float32 && f.Datatype != ros2.Float64:
					v = float64(p.Ring)
				case f.Count <= 1 && (name == "t" || name == "time_offset") && f.Datatype != ros2.Float32 && f.Datatype != ros2.Float64 && f.Datatype != ros2.Int8:
					v = float64(p.TimeOffset)
				default:
					j, ok := extraOf[name]
					if !ok {
						j, ok = extraOf["ros."+name]
					}
					if ok {
						v = columnValue(&s.Extra[j], i)
					}
				}
				putField(pt[int(f.Offset)+int(k)*ros2.FieldSize(f.Datatype):], f.Datatype, v)
			}
		}
	}
	m := ros2.PointCloud2{Header: ros2.Header{Stamp: ros2.TimeOf(s.Time), FrameID: ch.meta.FrameID}, Height: 1, Width: uint32(n),
		Fields: fields, PointStep: step, RowStep: uint32(n) * step, Data: data, IsDense: true}
	return ros2.AppendPointCloud2(dst, &m)
}

func columnValue(c *codecs.Column, i int) float64 {
	switch c.Type {
	case signals.Int16:
		return float64(c.I16[i])
	case signals.Int32:
		return float64(c.I32[i])
	case signals.Float32:
		return float64(c.F32[i])
	}
	return c.F64[i]
}

// putField writes v as a little-endian PointField datatype.
func putField(b []byte, dt uint8, v float64) {
	switch dt {
	case ros2.Int8, ros2.Uint8:
		b[0] = byte(int64(v))
	case ros2.Int16, ros2.Uint16:
		binary.LittleEndian.PutUint16(b, uint16(int64(v)))
	case ros2.Int32, ros2.Uint32:
		binary.LittleEndian.PutUint32(b, uint32(int64(v)))
	case ros2.Float32:
		binary.LittleEndian.PutUint32(b, math.Float32bits(float32(v)))
	case ros2.Float64:
		binary.LittleEndian.PutUint64(b, math.Float64bits(v))
	}
}
