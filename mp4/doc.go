// Package mp4 writes the ISO base media file format (ISO/IEC 14496-12, "MP4")
// that Sensorium hands to players: fragmented MP4 of H.264 video with its
// AAC or PCM audio, as GetClip's files, HLS sessions' initialization and
// media segments and the console's Media Source Extensions buffers.
//
// It owns the boxes and nothing else: which frames go in a fragment, and
// their times, are the caller's (package mp4/remux turns stored Matroska
// fragments into them). It never re-encodes: a sample's bytes are written
// as the caller gives them.
//
// # What it writes
//
// An initialization segment (AppendInit) is ftyp and a moov whose tracks
// hold no samples (empty sample tables) and whose mvex says that the media
// comes in movie fragments. A media segment (Fragment) is one moof and one
// mdat: a traf per track with tfhd (default-base-is-moof), tfdt (64-bit
// decode time) and a trun that lists the samples' durations, sizes, flags
// and composition offsets, leaving out what is the same for every sample.
// Composition offsets are written as trun version 1 (signed) when one is
// negative, so that a B-frame stream's decode times can be its sorted
// presentation times and its first picture is presented at the fragment's
// decode time, as CMAF does. A Writer puts both in one file and ends it with
// an mfra, so that players seek in it without reading every moof.
// FORMAT.md lays every box out with its fields.
//
// Sample entries: avc1 with avcC (H.264; AVC), mp4a with esds (AAC; AAC),
// and QuickTime's lpcm (sound description version 2) for PCM (PCM): ffmpeg
// and VLC read it, while ISO's ipcm (ISO/IEC 23003-5) is read by no ffmpeg
// before 6.1 and by no browser either (browsers play no PCM in MP4 at all).
//
// # Lifecycle
//
// For a file: NewWriter (writes ftyp and moov), WriteFragment per fragment,
// Close (writes mfra); the first write error sticks. For segments served
// one by one: AppendInit once, then Fragment.AppendHeader and the runs'
// Data, or Fragment.WriteTo, per segment.
package mp4
