// Package sdk is the Go client of Sensorium.
//
// Producer turns frames into fragments and delivers them to a stream over NATS
// JetStream: a fragment closes at a key frame once it is MinFragmentDuration
// long, or at MaxFragmentDuration or MaxFragmentSize, or when it has been open
// MaxFragmentDuration of wall time. Every fragment stays in a byte-bounded
// buffer until the server answers PERSISTED (after its fsync) or ERROR, and is
// re-sent after failed publishes, reconnects and overdue PERSISTED events; the
// server's dedupe makes re-sends harmless. When the buffer is full, Block makes
// PutFrame wait, DropOldest drops the oldest fragments and RefuseNew the new
// one, and each dropped fragment is reported through OnDrop (sequence,
// producer time span, frames, bytes, cause). A fragment
// dropped after it was published may still reach the store: its notice says
// so (Dropped.OnTheWire), and if the server stores it its PERSISTED still
// reaches OnAck, so the caller learns the truth either way.
//
// Memory. BufferBytes bounds the fragments the producer holds. Besides them
// it holds the open fragment (at most MaxFragmentSize); a fragment dropped
// while its publish was on the wire stays referenced by that publish until
// the bus answers or it times out (10 s), at most MaxPublishesInFlight of
// them; and the NATS client keeps what it is asked to write while
// disconnected, up to its nats.ReconnectBufSize (8 MiB by default; those are
// copies of fragments in the buffer). So at most BufferBytes +
// (1 + MaxPublishesInFlight) × MaxFragmentSize + ReconnectBufSize.
// TestProducerSurvivesNetworkFaults and TestProducerDropOldestUnderStall
// (internal/service/server) hold the buffer to BufferBytes behind a faulty link.
// With a spool (ProducerConfig.Spool, sdk/SPOOL.md) BufferBytes bounds only
// the fragments held in memory to send: the backlog stays on disk.
//
// Spool. A producer given a folder and a byte budget writes each fragment
// there (fsynced in groups, and always before it is published) and keeps it
// until PERSISTED, refused or dropped, so that fragments survive the
// producer being killed and the machine losing power. A producer started
// again on the folder takes the spool's producer id, continues its
// sequences and re-sends the rest, which the server stores once whatever
// the delay; SpooledThrough says where its source should resume. Catch-up
// keeps production order (the store refuses producer time going back), at
// the link's full speed, while live frames still reach the live subject at
// once. A full budget applies Policy: Block, DropOldest (a segment file's
// fragments at a time) or RefuseNew, and OnDrop says which fragments went
// and why (Dropped.Cause).
//
// Acknowledgement events reach OnAck in order: RECEIVED (the bus has it), then
// PERSISTED or ERROR. An ERROR with Retriable set is not the end: the bus
// refused the fragment (ARCHIVAL_ERROR, 5001, told once per fragment: the
// server's disk is nearly full), the producer keeps it and sends it again,
// and PERSISTED follows; AckEvent.Terminal tells the two apart. SampleWriter
// makes frames of a scalar signal with exact sample times.
//
// MaxFragmentSize counts every encoded byte of a fragment, its metadata tags
// included, up to 50 MB (MaxFragmentSizeLimit). A fragment that with
// PublishHeaderBytes of headers does not fit the NATS server's max_payload (a
// stock nats-server takes 1 MB, the embedded one 8 MiB) is published as chunk
// messages that the server joins and stores whole (docs/NATS.md, "Fragments
// larger than a message"); the default MaxFragmentSize shrinks to fit one
// message, which is cheaper. A producer that reconnects to a server that
// takes less cuts its chunks for that server.
//
// Close flushes within its context and stops the producer; from the moment it
// is called, every put and Flush returns ErrClosed, so no data is taken and
// then lost. Waiting for a PutFrame blocked on a full buffer is bounded by
// Close's context too: when it ends, that PutFrame returns ErrClosed and its
// fragment is reported through OnDrop.
//
// The typed puts (PutSamples, PutRadarScan, PutArray, PutPointCloud) and the
// writers (NewSampleWriter, NewIMUWriter, NewPCMWriter) encode frames with
// the track's own description, which the producer parses from each track's
// CodecPrivate when it is made: the description they take may be nil, and
// one that differs from the track's is refused, since readers decode with
// the track's. They also refuse data the description does not allow: samples
// of another channel count or type, a LIDAR point on a ring the sensor does
// not have or before the sweep's start, RADAR extra columns that are not the
// declared extra fields. A LIDAR frame lasts at least to its last point
// (largest time_offset + 1 ns), whatever the period, so that a query over the
// end of a sweep finds it: queries pick fragments by their span, which runs
// from the cluster time (the first frame's, cut to a millisecond) for the
// fragment's Info Duration, and the SDK writes that duration to reach the end
// of the latest frame.
//
// A track's frames come in time order, except on a video track: there a
// frame's timestamp is its presentation time (Matroska block times are) and
// frames come in decode order, so with B-frames a frame that is not a key
// frame may be earlier than the one before it — but never earlier than the
// key frame (IDR) that starts its group, nor than its fragment's first
// frame, whose time is the fragment's producer timestamp. SplitAnnexB gives
// each access unit's place in presentation order (AccessUnit.Order, from the
// picture order counts) for PutH264's presentation time, and builds the avcC
// record with the chroma format and bit depths High profiles need.
//
// NewMediaReader reads GetMedia and GetMediaForFragmentList output frame by
// frame with the track and fragment metadata (number, producer and server
// timestamps, tags); Client.Follow follows a stream live and resumes from the
// continuation token after a dropped connection. Client calls the HTTP API:
// the control plane, ListFragments, GetMedia and Arrow queries.
//
// It depends on the public packages mkv, signals and codecs (and the bus and
// HTTP contracts in internal/platform), never on the server's packages, so a
// device can link it without the server.
package sdk
