package edge_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/pushgate/pushgate/broker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction(broker.IgnoreLeak))
}
