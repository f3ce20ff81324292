package sites_test

import (
	"testing"

	"github.com/opsmantik/opsmantik/pkg/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }
