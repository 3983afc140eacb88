package api

import (
	"net/http"

	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/internal/service/throttle"
	"github.com/sensorium-io/sensorium/store"
)

// ref is the store's name of a stream reference.
func ref(s httpwire.StreamRef) store.StreamRef {
	return store.StreamRef{Name: s.StreamName, ARN: s.StreamARN}
}

func toStreamInfo(in store.StreamInfo) httpwire.StreamInfo {
	return httpwire.StreamInfo{
		CreationTime: httpwire.At(in.CreationTime.UnixNano()), DataRetentionInHours: in.RetentionHours, DeviceName: in.DeviceName,
		KmsKeyID: in.KMSKeyID, MediaType: in.MediaType, Status: in.Status, StreamARN: in.ARN, StreamName: in.Name, Version: in.Version,
	}
}

func (a *api) createStream(w http.ResponseWriter, r *http.Request) {
	var in httpwire.CreateStreamInput
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	if err := throttle.CheckTags(in.Tags); err != nil {
		writeError(w, err)
		return
	}
	info, err := a.cat.CreateStream(r.Context(), store.CreateStreamInput{
		Name: in.StreamName, DeviceName: in.DeviceName, MediaType: in.MediaType, KMSKeyID: in.KmsKeyID,
		RetentionHours: in.DataRetentionInHours, Tags: in.Tags,
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, httpwire.CreateStreamOutput{StreamARN: info.ARN})
}

func (a *api) describeStream(w http.ResponseWriter, r *http.Request) {
	var in httpwire.StreamRef
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	info, err := a.cat.DescribeStream(r.Context(), ref(in))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, httpwire.DescribeStreamOutput{StreamInfo: toStreamInfo(info)})
}

func (a *api) listStreams(w http.ResponseWriter, r *http.Request) {
	var in httpwire.ListStreamsInput
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	limit, prefix := 10000, ""
	if in.MaxResults != nil {
		limit = *in.MaxResults
	}
	if c := in.StreamNameCondition; c != nil {
		if c.ComparisonOperator != "" && c.ComparisonOperator != httpwire.BeginsWith {
			writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "ComparisonOperator must be BEGINS_WITH"))
			return
		}
		prefix = c.ComparisonValue
	}
	infos, next, err := a.listGranted(r, prefix, limit, in.NextToken)
	if err != nil {
		writeError(w, err)
		return
	}
	out := httpwire.ListStreamsOutput{NextToken: next, StreamInfoList: []httpwire.StreamInfo{}}
	for _, i := range infos {
		out.StreamInfoList = append(out.StreamInfoList, toStreamInfo(i))
	}
	writeJSON(w, out)
}

// maxListRounds bounds the catalog pages one ListStreams of a restricted key
// reads; past it the answer holds fewer than MaxResults and a NextToken,
// which the service's clients take (its own pages may be short too).
const maxListRounds = 64

// listGranted is a page of the streams the request's key may see. The
// catalog's pages are filtered (grantedStreams) and, while the page is short
// and there are more, the next is read: each one is asked for exactly what
// is missing and taken whole, so its token is where the next page starts and
// nothing is skipped or shown twice.
func (a *api) listGranted(r *http.Request, prefix string, limit int, token string) ([]store.StreamInfo, string, error) {
	infos, next, err := a.cat.ListStreams(r.Context(), prefix, limit, token)
	if err != nil {
		return nil, "", err
	}
	out := grantedStreams(r, infos)
	if len(out) == len(infos) {
		return out, next, nil
	}
	for round := 1; round < maxListRounds && next != "" && len(out) < limit; round++ {
		infos, next, err = a.cat.ListStreams(r.Context(), prefix, limit-len(out), next)
		if err != nil {
			return nil, "", err
		}
		out = append(out, grantedStreams(r, infos)...)
	}
	return out, next, nil
}

func (a *api) updateStream(w http.ResponseWriter, r *http.Request) {
	var in httpwire.UpdateStreamInput
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	if err := a.cat.UpdateStream(r.Context(), ref(in.StreamRef), in.CurrentVersion, in.DeviceName, in.MediaType); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, nil)
}

func (a *api) updateDataRetention(w http.ResponseWriter, r *http.Request) {
	var in httpwire.UpdateDataRetentionInput
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	var increase bool
	switch in.Operation {
	case httpwire.IncreaseDataRetention:
		increase = true
	case httpwire.DecreaseDataRetention:
	default:
		writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "Operation must be INCREASE_DATA_RETENTION or DECREASE_DATA_RETENTION"))
		return
	}
	if err := a.cat.UpdateDataRetention(r.Context(), ref(in.StreamRef), in.CurrentVersion, increase, in.DataRetentionChangeInHours); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, nil)
}

func (a *api) deleteStream(w http.ResponseWriter, r *http.Request) {
	var in httpwire.DeleteStreamInput
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	if err := a.cat.DeleteStream(r.Context(), ref(in.StreamRef), in.CurrentVersion); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, nil)
}

func (a *api) tagStream(w http.ResponseWriter, r *http.Request) {
	var in httpwire.TagStreamInput
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	if err := throttle.CheckTags(in.Tags); err != nil { // a rate-limit override that is not a rate
		writeError(w, err)
		return
	}
	if err := a.cat.TagStream(r.Context(), ref(in.StreamRef), in.Tags); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, nil)
}

func (a *api) untagStream(w http.ResponseWriter, r *http.Request) {
	var in httpwire.UntagStreamInput
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	if err := a.cat.UntagStream(r.Context(), ref(in.StreamRef), in.TagKeyList); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, nil)
}

func (a *api) listTagsForStream(w http.ResponseWriter, r *http.Request) {
	var in httpwire.ListTagsForStreamInput
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	if in.NextToken != "" {
		// Every tag fits one page (at most 50), so no token is ever issued.
		writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "NextToken is not one this server issued"))
		return
	}
	info, err := a.cat.DescribeStream(r.Context(), ref(in.StreamRef))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, httpwire.ListTagsForStreamOutput{Tags: info.Tags})
}

var dataAPIs = map[string]bool{
	"PUT_MEDIA": true, "GET_MEDIA": true, "LIST_FRAGMENTS": true, "GET_MEDIA_FOR_FRAGMENT_LIST": true,
	"GET_HLS_STREAMING_SESSION_URL": true, "GET_DASH_STREAMING_SESSION_URL": true, "GET_CLIP": true, "GET_IMAGES": true,
}

func (a *api) getDataEndpoint(w http.ResponseWriter, r *http.Request) {
	var in httpwire.GetDataEndpointInput
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	if !dataAPIs[in.APIName] {
		writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "APIName %q is not a data API of this service", in.APIName))
		return
	}
	info, err := a.cat.DescribeStream(r.Context(), ref(in.StreamRef))
	if err != nil {
		writeError(w, err)
		return
	}
	endpoint := ""
	if a.opts.DataEndpoint != nil {
		endpoint = a.opts.DataEndpoint()
	}
	if a.cluster != nil && in.APIName != "PUT_MEDIA" {
		// Reads are served by the stream's replicas (any node passes them
		// on, but a client that asks is sent to one straight away).
		if e, err := a.cluster.DataEndpoint(r.Context(), info.Name); err == nil && e != "" {
			endpoint = e
		}
	}
	if endpoint == "" {
		endpoint = "http://" + r.Host
	}
	writeJSON(w, httpwire.GetDataEndpointOutput{DataEndpoint: endpoint})
}
