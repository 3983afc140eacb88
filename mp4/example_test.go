package mp4_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log"
	"time"

	"github.com/sensorium-io/sensorium/mp4"
)

// A file of one H.264 track: the initialization segment, one fragment of
// two pictures (a key frame and one that depends on it) and the random
// access index, written as they come. A player would be given real access
// units; these bytes only show the layout.
func ExampleWriter() {
	avcC, _ := hex.DecodeString("0164000dffe100196764000dacd94141fb011000000300100000030320f142996001000468ef8fcbfdf8f800")
	avc, err := mp4.NewAVC(avcC, 0, 0) // the picture size comes from the SPS
	if err != nil {
		log.Fatal(err)
	}
	movie := &mp4.Movie{Tracks: []mp4.Track{{ID: 1, Timescale: 90000, Entry: avc}}, Duration: 80 * time.Millisecond}
	fmt.Println("codecs:", movie.Codecs(), "size:", avc.Width, "x", avc.Height)

	var file bytes.Buffer
	w, err := mp4.NewWriter(&file, movie)
	if err != nil {
		log.Fatal(err)
	}
	key, next := []byte{0, 0, 0, 2, 0x65, 0x88}, []byte{0, 0, 0, 2, 0x41, 0x9a}
	err = w.WriteFragment(&mp4.Fragment{Runs: []mp4.Run{{
		Track:      1,
		DecodeTime: 0,
		Samples:    []mp4.Sample{{Duration: 3600, Size: 6, Sync: true}, {Duration: 3600, Size: 6}},
		Data:       append(key, next...),
	}}})
	if err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	for b := file.Bytes(); len(b) >= 8; {
		n := binary.BigEndian.Uint32(b)
		fmt.Printf("%s %d\n", b[4:8], n)
		b = b[n:]
	}
	// Output:
	// codecs: avc1.64000d size: 320 x 240
	// ftyp 32
	// moov 655
	// moof 104
	// mdat 20
	// mfra 67
}
