package mcap_test

import (
	"bytes"
	"fmt"
	"io"

	"github.com/sensorium-io/sensorium/mcap"
)

// Write a chunked, indexed file, then read it back message by message.
func Example() {
	var file bytes.Buffer
	w, err := mcap.NewWriter(&file, mcap.WriterOptions{Profile: "ros2", Compression: "lz4"})
	if err != nil {
		panic(err)
	}
	w.AddSchema(mcap.Schema{ID: 1, Name: "std_msgs/msg/Float64", Encoding: "ros2msg", Data: []byte("float64 data\n")})
	w.AddChannel(mcap.Channel{ID: 1, SchemaID: 1, Topic: "/battery/voltage", MessageEncoding: "cdr"})
	for i := 0; i < 3; i++ {
		// CDR: the little-endian encapsulation header, then the float64.
		data := []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x38, 0x40 + byte(i)}
		t := uint64(1_764_000_000_000_000_000 + i*1_000_000)
		if err := w.WriteMessage(&mcap.Message{ChannelID: 1, Sequence: uint32(i), LogTime: t, PublishTime: t, Data: data}); err != nil {
			panic(err)
		}
	}
	if err := w.Close(); err != nil {
		panic(err)
	}

	r, err := mcap.NewReader(bytes.NewReader(file.Bytes()), mcap.Options{})
	if err != nil {
		panic(err)
	}
	for {
		m, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		ch := r.Channel(m.ChannelID)
		fmt.Println(ch.Topic, r.Schema(ch.SchemaID).Name, m.LogTime, len(m.Data))
	}
	s, err := mcap.ReadSummary(bytes.NewReader(file.Bytes()), int64(file.Len()))
	if err != nil {
		panic(err)
	}
	fmt.Println(len(s.Chunks), "chunk,", s.Statistics.MessageCount, "messages,", s.Chunks[0].Compression)
	// Output:
	// /battery/voltage std_msgs/msg/Float64 1764000000000000000 12
	// /battery/voltage std_msgs/msg/Float64 1764000000001000000 12
	// /battery/voltage std_msgs/msg/Float64 1764000000002000000 12
	// 1 chunk, 3 messages, lz4
}
