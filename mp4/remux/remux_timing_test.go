package remux_test

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/mp4"
	"github.com/sensorium-io/sensorium/mp4/remux"
)

// BenchmarkRemux: stored fragments (x264 with B-frames and AAC, a second
// each) to a fragmented MP4, as GetClip writes a clip, beside the peer:
// ffmpeg remuxing the same Matroska (-c copy) to fragmented MP4 on the same
// machine in the same run. It reports both throughputs in MB of Matroska
// read per second and their ratio; ffmpeg's includes starting its process,
// so the clip is long (200 fragments, GetClip's most).
func BenchmarkRemux(b *testing.B) {
	src := encodeBench(b)
	var frags [][]byte
	var size int64
	// 200 fragments: the source's 4 repeated, each a second later.
	for i := 0; i < 200; i++ {
		f := src[i%len(src)]
		frags = append(frags, shift(b, f, int64(i/len(src))*int64(len(src))*1000))
		size += int64(len(f))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		r, err := remux.New(frags[0], remux.Options{Relative: true, DecodeDelay: -1})
		if err != nil {
			b.Fatal(err)
		}
		w, err := mp4.NewWriter(io.Discard, r.Movie())
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range frags {
			mf, err := r.Fragment(f)
			if err != nil {
				b.Fatal(err)
			}
			if err := w.WriteFragment(mf); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	ours := float64(size) * float64(b.N) / time.Since(start).Seconds() / 1e6
	b.StopTimer()

	// The peer: the same fragments as one Matroska file, remuxed by ffmpeg.
	path := filepath.Join(b.TempDir(), "in.mkv")
	var file []byte
	for i, f := range frags {
		if i == 0 {
			file = append(file, f...)
			continue
		}
		// Each fragment is a document of its own; ffmpeg reads one
		// Segment, so the next ones go in as their Clusters.
		file = append(file, f[clusterAt(b, f):]...)
	}
	if err := os.WriteFile(path, file, 0o644); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-c", "copy", "-f", "mp4", "-movflags", "frag_keyframe+empty_moov", "-y", os.DevNull).CombinedOutput()
	if err != nil {
		b.Fatalf("ffmpeg: %v: %s", err, out)
	}
	peer := float64(size) / time.Since(t0).Seconds() / 1e6
	b.ReportMetric(ours, "ours_MB/s")
	b.ReportMetric(peer, "ffmpeg_MB/s")
	b.ReportMetric(ours/peer, "ours/ffmpeg")
}

func encodeBench(b *testing.B) [][]byte {
	b.Helper()
	for _, tool := range []string{"ffmpeg"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s missing: run scripts/install-test-deps.sh", tool)
		}
	}
	// A camera's rate: 1280×720 at 25 fps, about 2 Mbit/s.
	dir := b.TempDir()
	v := filepath.Join(dir, "v.mkv")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=48000",
		"-t", "4", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "2M", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-bf", "2",
		"-c:a", "aac", "-ac", "2", "-f", "matroska", "-cluster_size_limit", "8000000", "-cluster_time_limit", "5000", v).CombinedOutput(); err != nil {
		b.Fatalf("ffmpeg: %v: %s", err, out)
	}
	data, err := os.ReadFile(v)
	if err != nil {
		b.Fatal(err)
	}
	// One fragment per cluster, each a document with the file's tracks, as
	// the store keeps them.
	rd := mkv.NewReader(bytes.NewReader(data))
	var tracks []mkv.TrackEntry
	var frags [][]byte
	var blocks []mkv.Block
	var tc uint64
	flush := func() {
		if blocks == nil {
			return
		}
		f := mkv.AppendEBMLHeader(nil, "matroska")
		f = mkv.AppendSegmentStart(f)
		f = mkv.AppendInfo(f, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale})
		f = mkv.AppendTracks(f, tracks)
		frags = append(frags, mkv.AppendCluster(f, tc+1_780_000_000_000, blocks))
		blocks = nil
	}
	for {
		it, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		switch it.Kind {
		case mkv.ItemTracks:
			tracks = append([]mkv.TrackEntry(nil), it.Tracks...)
		case mkv.ItemClusterStart:
			flush()
			tc = it.Timecode
		case mkv.ItemBlock:
			blk := *it.Block
			blk.Data = append([]byte(nil), blk.Data...)
			blocks = append(blocks, blk)
		}
	}
	flush()
	return frags
}

// shift returns a fragment whose cluster timecode is ms later.
func shift(b *testing.B, f []byte, ms int64) []byte {
	b.Helper()
	rd := mkv.NewReader(bytes.NewReader(f))
	var tracks []mkv.TrackEntry
	var blocks []mkv.Block
	var tc uint64
	for {
		it, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		switch it.Kind {
		case mkv.ItemTracks:
			tracks = append([]mkv.TrackEntry(nil), it.Tracks...)
		case mkv.ItemClusterStart:
			tc = it.Timecode
		case mkv.ItemBlock:
			blk := *it.Block
			blk.Data = append([]byte(nil), blk.Data...)
			blocks = append(blocks, blk)
		}
	}
	out := mkv.AppendEBMLHeader(nil, "matroska")
	out = mkv.AppendSegmentStart(out)
	out = mkv.AppendInfo(out, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale})
	out = mkv.AppendTracks(out, tracks)
	return mkv.AppendCluster(out, tc+uint64(ms), blocks)
}

// clusterAt is the offset of a fragment's Cluster.
func clusterAt(b *testing.B, f []byte) int {
	rd := mkv.NewReader(bytes.NewReader(f))
	for {
		it, err := rd.Next()
		if err != nil {
			b.Fatal(err)
		}
		if it.Kind == mkv.ItemClusterStart {
			return int(it.Offset)
		}
	}
}
