package build

import (
	"encoding/json"
	"testing"
	"time"
)

// Durations in JSON are seconds, as in the logs: the summary's steps used to
// carry nanoseconds.
func TestReportJSONDurationsInSeconds(t *testing.T) {
	r := Report{Variant: "t", Duration: 1500 * time.Millisecond,
		Steps: []StepReport{{Variant: "t", Step: StepCommit, Duration: 250 * time.Millisecond, Result: "abc"}}}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Variant  string
		Duration float64
		Steps    []struct {
			Step     string
			Result   string
			Duration float64
		}
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Duration != 1.5 || len(got.Steps) != 1 || got.Steps[0].Duration != 0.25 || got.Steps[0].Result != "abc" || got.Variant != "t" {
		t.Errorf("JSON %s: want durations 1.5 and 0.25 seconds and the other fields kept", data)
	}
}
