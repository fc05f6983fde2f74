package push

import (
	"context"
	"testing"

	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// TestCompressionReproducible: the same layer compressed by two pushers with
// empty caches (two machines, two fresh runners) has one digest, so a push
// from one finds the blobs another pushed.
func TestCompressionReproducible(t *testing.T) {
	st := teststack.Start(t)
	st.Setenv(t)
	ctx := context.Background()
	n := teststack.NewNames(t)
	img := buildLayered(t, st, "ctjdeploy-test/"+n.Prefix+"app:a", randomBytes(t, 3<<20), 1<<20)
	var plans []Plan
	for i, r := range []string{n.Prefix + "x", n.Prefix + "y"} {
		st.CreateRepository(t, r, "") // empty: nothing known, every layer read and compressed
		p, e := freshPusher(t, st)
		pl, err := p.Plan(ctx, img, Target{Registry: st.Registry, Repository: r, Tags: []string{"c1"}})
		if err != nil {
			t.Fatal(err)
		}
		if e.saves.Load() != 1 {
			t.Fatalf("pusher %d: %d exports, want 1 (every layer compressed)", i, e.saves.Load())
		}
		plans = append(plans, pl)
	}
	if plans[0].Digest != plans[1].Digest || len(plans[0].Layers) != len(plans[1].Layers) || len(plans[0].Layers) < 3 {
		t.Fatalf("two empty caches: manifests %s and %s (%d and %d layers), want one", plans[0].Digest, plans[1].Digest, len(plans[0].Layers), len(plans[1].Layers))
	}
	for i := range plans[0].Layers {
		if plans[0].Layers[i].Digest != plans[1].Layers[i].Digest || plans[0].Layers[i].Size != plans[1].Layers[i].Size {
			t.Errorf("layer %d: %+v and %+v", i, plans[0].Layers[i], plans[1].Layers[i])
		}
	}
}
