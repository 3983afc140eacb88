package api

import (
	"net/http"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/store"
)

// streamRef is the StreamName / StreamARN pair most operations take.
type streamRef struct {
	StreamName string `json:"StreamName,omitempty"`
	StreamARN  string `json:"StreamARN,omitempty"`
}

func (s streamRef) ref() store.StreamRef {
	return store.StreamRef{Name: s.StreamName, ARN: s.StreamARN}
}

type streamInfo struct {
	CreationTime         Timestamp `json:"CreationTime"`
	DataRetentionInHours int       `json:"DataRetentionInHours"`
	DeviceName           string    `json:"DeviceName,omitempty"`
	KmsKeyID             string    `json:"KmsKeyId,omitempty"`
	MediaType            string    `json:"MediaType,omitempty"`
	Status               string    `json:"Status"`
	StreamARN            string    `json:"StreamARN"`
	StreamName           string    `json:"StreamName"`
	Version              string    `json:"Version"`
}

func toStreamInfo(in store.StreamInfo) streamInfo {
	return streamInfo{
		CreationTime: ts(in.CreationTime.UnixNano()), DataRetentionInHours: in.RetentionHours, DeviceName: in.DeviceName,
		KmsKeyID: in.KMSKeyID, MediaType: in.MediaType, Status: in.Status, StreamARN: in.ARN, StreamName: in.Name, Version: in.Version,
	}
}

func (a *api) createStream(w http.ResponseWriter, r *http.Request) {
	var in struct {
		DeviceName           string            `json:"DeviceName"`
		StreamName           string            `json:"StreamName"`
		MediaType            string            `json:"MediaType"`
		KmsKeyID             string            `json:"KmsKeyId"`
		DataRetentionInHours int               `json:"DataRetentionInHours"`
		Tags                 map[string]string `json:"Tags"`
	}
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	info, err := a.st.CreateStream(store.CreateStreamInput{
		Name: in.StreamName, DeviceName: in.DeviceName, MediaType: in.MediaType, KMSKeyID: in.KmsKeyID,
		RetentionHours: in.DataRetentionInHours, Tags: in.Tags,
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, map[string]string{"StreamARN": info.ARN})
}

func (a *api) describeStream(w http.ResponseWriter, r *http.Request) {
	var in streamRef
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	info, err := a.st.DescribeStream(in.ref())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, map[string]any{"StreamInfo": toStreamInfo(info)})
}

func (a *api) listStreams(w http.ResponseWriter, r *http.Request) {
	var in struct {
		MaxResults          *int   `json:"MaxResults"`
		NextToken           string `json:"NextToken"`
		StreamNameCondition *struct {
			ComparisonOperator string `json:"ComparisonOperator"`
			ComparisonValue    string `json:"ComparisonValue"`
		} `json:"StreamNameCondition"`
	}
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	limit, prefix := 10000, ""
	if in.MaxResults != nil {
		limit = *in.MaxResults
	}
	if c := in.StreamNameCondition; c != nil {
		if c.ComparisonOperator != "" && c.ComparisonOperator != "BEGINS_WITH" {
			writeError(w, wire.Errorf(wire.InvalidArgument, "ComparisonOperator must be BEGINS_WITH"))
			return
		}
		prefix = c.ComparisonValue
	}
	infos, next, err := a.st.ListStreams(prefix, limit, in.NextToken)
	if err != nil {
		writeError(w, err)
		return
	}
	out := struct {
		NextToken      string       `json:"NextToken,omitempty"`
		StreamInfoList []streamInfo `json:"StreamInfoList"`
	}{NextToken: next, StreamInfoList: []streamInfo{}}
	for _, i := range infos {
		out.StreamInfoList = append(out.StreamInfoList, toStreamInfo(i))
	}
	writeJSON(w, out)
}

func (a *api) updateStream(w http.ResponseWriter, r *http.Request) {
	var in struct {
		streamRef
		CurrentVersion string  `json:"CurrentVersion"`
		DeviceName     *string `json:"DeviceName"`
		MediaType      *string `json:"MediaType"`
	}
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	if err := a.st.UpdateStream(in.ref(), in.CurrentVersion, in.DeviceName, in.MediaType); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, nil)
}

func (a *api) updateDataRetention(w http.ResponseWriter, r *http.Request) {
	var in struct {
		streamRef
		CurrentVersion             string `json:"CurrentVersion"`
		Operation                  string `json:"Operation"`
		DataRetentionChangeInHours int    `json:"DataRetentionChangeInHours"`
	}
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	var increase bool
	switch in.Operation {
	case "INCREASE_DATA_RETENTION":
		increase = true
	case "DECREASE_DATA_RETENTION":
	default:
		writeError(w, wire.Errorf(wire.InvalidArgument, "Operation must be INCREASE_DATA_RETENTION or DECREASE_DATA_RETENTION"))
		return
	}
	if err := a.st.UpdateDataRetention(in.ref(), in.CurrentVersion, increase, in.DataRetentionChangeInHours); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, nil)
}

func (a *api) deleteStream(w http.ResponseWriter, r *http.Request) {
	var in struct {
		streamRef
		CurrentVersion string `json:"CurrentVersion"`
	}
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	if err := a.st.DeleteStream(in.ref(), in.CurrentVersion); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, nil)
}

func (a *api) tagStream(w http.ResponseWriter, r *http.Request) {
	var in struct {
		streamRef
		Tags map[string]string `json:"Tags"`
	}
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	if err := a.st.TagStream(in.ref(), in.Tags); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, nil)
}

func (a *api) untagStream(w http.ResponseWriter, r *http.Request) {
	var in struct {
		streamRef
		TagKeyList []string `json:"TagKeyList"`
	}
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	if err := a.st.UntagStream(in.ref(), in.TagKeyList); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, nil)
}

func (a *api) listTagsForStream(w http.ResponseWriter, r *http.Request) {
	var in struct {
		streamRef
		NextToken string `json:"NextToken"`
	}
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	if in.NextToken != "" {
		// Every tag fits one page (at most 50), so no token is ever issued.
		writeError(w, wire.Errorf(wire.InvalidArgument, "NextToken is not one this server issued"))
		return
	}
	info, err := a.st.DescribeStream(in.ref())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, map[string]any{"Tags": info.Tags})
}

var dataAPIs = map[string]bool{
	"PUT_MEDIA": true, "GET_MEDIA": true, "LIST_FRAGMENTS": true, "GET_MEDIA_FOR_FRAGMENT_LIST": true,
	"GET_HLS_STREAMING_SESSION_URL": true, "GET_DASH_STREAMING_SESSION_URL": true, "GET_CLIP": true, "GET_IMAGES": true,
}

func (a *api) getDataEndpoint(w http.ResponseWriter, r *http.Request) {
	var in struct {
		streamRef
		APIName string `json:"APIName"`
	}
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	if !dataAPIs[in.APIName] {
		writeError(w, wire.Errorf(wire.InvalidArgument, "APIName %q is not a data API of this service", in.APIName))
		return
	}
	if _, err := a.st.DescribeStream(in.ref()); err != nil {
		writeError(w, err)
		return
	}
	endpoint := ""
	if a.opts.DataEndpoint != nil {
		endpoint = a.opts.DataEndpoint()
	}
	if endpoint == "" {
		endpoint = "http://" + r.Host
	}
	writeJSON(w, map[string]string{"DataEndpoint": endpoint})
}
