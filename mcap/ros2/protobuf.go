package ros2

import (
	"encoding/binary"
	"fmt"
)

// DecodeCompressedVideoProto decodes foxglove.CompressedVideo in protobuf by
// the field numbers of Foxglove's published schema (timestamp 1, frame_id
// 2, data 3, format 4; google.protobuf.Timestamp's seconds 1 and nanos 2),
// so the file's FileDescriptorSet is not needed. Unknown fields are skipped,
// as protobuf readers do.
func DecodeCompressedVideoProto(msg []byte) (CompressedVideo, error) {
	var m CompressedVideo
	err := protoFields(msg, func(num int, wire int, v uint64, b []byte) error {
		switch {
		case num == 1 && wire == 2:
			return protoFields(b, func(num int, wire int, v uint64, _ []byte) error {
				switch {
				case num == 1 && wire == 0:
					m.Timestamp.Sec = int32(int64(v))
				case num == 2 && wire == 0:
					m.Timestamp.Nanosec = uint32(v)
				}
				return nil
			})
		case num == 2 && wire == 2:
			m.FrameID = string(b)
		case num == 3 && wire == 2:
			m.Data = b
		case num == 4 && wire == 2:
			m.Format = string(b)
		}
		return nil
	})
	if err != nil {
		return m, fmt.Errorf("ros2: foxglove.CompressedVideo (protobuf): %w", err)
	}
	return m, nil
}

// protoFields calls fn for each field of a protobuf message: varints (wire
// type 0) in v, length-delimited fields (2) in b, fixed 32/64-bit (5, 1)
// in v.
func protoFields(msg []byte, fn func(num, wire int, v uint64, b []byte) error) error {
	for len(msg) > 0 {
		key, n := binary.Uvarint(msg)
		if n <= 0 {
			return fmt.Errorf("%w: bad field key", ErrMalformed)
		}
		msg = msg[n:]
		num, wire := int(key>>3), int(key&7)
		var v uint64
		var b []byte
		switch wire {
		case 0:
			if v, n = binary.Uvarint(msg); n <= 0 {
				return fmt.Errorf("%w: field %d: bad varint", ErrMalformed, num)
			}
			msg = msg[n:]
		case 1:
			if len(msg) < 8 {
				return fmt.Errorf("%w: field %d: truncated", ErrMalformed, num)
			}
			v, msg = binary.LittleEndian.Uint64(msg), msg[8:]
		case 2:
			l, n := binary.Uvarint(msg)
			if n <= 0 || l > uint64(len(msg)-n) {
				return fmt.Errorf("%w: field %d: length beyond the message", ErrMalformed, num)
			}
			b, msg = msg[n:n+int(l)], msg[n+int(l):]
		case 5:
			if len(msg) < 4 {
				return fmt.Errorf("%w: field %d: truncated", ErrMalformed, num)
			}
			v, msg = uint64(binary.LittleEndian.Uint32(msg)), msg[4:]
		default:
			return fmt.Errorf("%w: field %d: wire type %d", ErrMalformed, num, wire)
		}
		if err := fn(num, wire, v, b); err != nil {
			return err
		}
	}
	return nil
}
