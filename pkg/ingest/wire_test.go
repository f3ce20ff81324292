package ingest

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/opsmantik/opsmantik/pkg/protocol"
)

func jsonNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			names = append(names, jsonNames(f.Type)...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// TestWireTypesMatchTheProtocol: the lenient decoding types read exactly the
// fields pkg/protocol defines, so a field added to the protocol cannot be
// silently ignored by the server.
func TestWireTypesMatchTheProtocol(t *testing.T) {
	for _, c := range []struct{ decoder, wire reflect.Type }{
		{reflect.TypeFor[wireBatchDecoded](), reflect.TypeFor[protocol.Batch]()},
		{reflect.TypeFor[wireContext](), reflect.TypeFor[protocol.Context]()},
		{reflect.TypeFor[wireEvent](), reflect.TypeFor[protocol.Event]()},
	} {
		if got, want := jsonNames(c.decoder), jsonNames(c.wire); !slices.Equal(got, want) {
			t.Errorf("%s reads %v; %s has %v", c.decoder, got, c.wire, want)
		}
	}
}
