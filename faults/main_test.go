// Package faults proves what pushgate does when things go wrong: the broker
// goes away, an edge is deployed, an upstream of the gateway misbehaves, a
// client is slow, abusive or hostile. `make test-faults` runs it; the tests
// print what they measured. The README's Guarantees section says what the suite proves.
package faults

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/pushgate/pushgate/broker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction(broker.IgnoreLeak))
}
