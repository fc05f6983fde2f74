package engineimage

import (
	"bytes"
	"crypto/rand"
	"path/filepath"
	"testing"
)

// TestCompressLayerDeterministic: compressLayer gives one digest for one
// input, at every level, run after run.
func TestCompressLayerDeterministic(t *testing.T) {
	data := make([]byte, 3<<20)
	if _, err := rand.Read(data[:1<<20]); err != nil { // part random, part zeros: both code paths of the compressor
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, level := range []int{-1, 1, 6, 9} {
		var first string
		for run := 0; run < 2; run++ {
			b, diff, err := compressLayer(bytes.NewReader(data), filepath.Join(dir, "l"+string(rune('a'+level+1))+string(rune('0'+run))), level)
			if err != nil {
				t.Fatal(err)
			}
			if diff.String() == "" || b.size == 0 {
				t.Fatalf("level %d: %+v %s", level, b, diff)
			}
			if run == 0 {
				first = b.digest.String()
			} else if b.digest.String() != first {
				t.Errorf("level %d: digests %s and %s", level, first, b.digest)
			}
		}
	}
}
