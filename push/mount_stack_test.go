package push

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hackforla/ctjdeploy/internal/registrytest"
	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// recordingRT records every request the pusher makes; with decline on, it
// strips the mount from blob upload requests, so the registry answers 202
// Accepted with a fresh upload, exactly as a registry declining a mount.
type recordingRT struct {
	next    http.RoundTripper
	decline bool
	mu      sync.Mutex
	reqs    []string // "METHOD path?query"
}

func (r *recordingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Method+" "+req.URL.RequestURI())
	r.mu.Unlock()
	if r.decline && req.Method == http.MethodPost && req.URL.Query().Get("mount") != "" {
		req = req.Clone(req.Context())
		req.URL.RawQuery = ""
	}
	return r.next.RoundTrip(req)
}

// mounts returns the mount requests into repo, by digest: from which repository.
func (r *recordingRT) mounts(repo string) map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]string{}
	for _, q := range r.reqs {
		method, uri, _ := strings.Cut(q, " ")
		if method != http.MethodPost || !strings.HasPrefix(uri, "/v2/"+repo+"/blobs/uploads/?") {
			continue
		}
		req, _ := http.NewRequest(method, "http://x"+uri, nil)
		if m := req.URL.Query().Get("mount"); m != "" {
			out[m] = req.URL.Query().Get("from")
		}
	}
	return out
}

// TestPushMountsFromOtherRepository: the same image pushed into another
// repository of the registry, from a fresh runner, is mounted from the
// repository that holds it (nothing read from the engine, nothing
// uploaded); where the registry declines the mount, the layers are read
// back from that repository and uploaded, still without the engine.
func TestPushMountsFromOtherRepository(t *testing.T) {
	st := teststack.Start(t)
	st.Setenv(t)
	ctx := context.Background()
	n := teststack.NewNames(t)
	repoA, repoB, repoC, repoD, repoE := n.Prefix+"a", n.Prefix+"b", n.Prefix+"c", n.Prefix+"d", n.Prefix+"e"
	for _, r := range []string{repoA, repoB, repoC, repoD, repoE} {
		st.CreateRepository(t, r, "")
	}
	proxy := registrytest.Start(t, st.Registry)
	img := buildLayered(t, st, "ctjdeploy-test/"+n.Prefix+"app:a", randomBytes(t, 4<<20), 1<<20)

	cache1 := t.TempDir()
	p1, _ := cachedPusher(t, st, cache1)
	first, err := p1.Push(ctx, img, Target{Registry: proxy.Addr, Repository: repoA, Tags: []string{"c1", "stage"}})
	if err != nil {
		t.Fatal(err)
	}

	// The same pusher (its digest cache warm, so the registry is not asked
	// what it knows) remembers where it pushed: D mounts from A unasked.
	recD := &recordingRT{next: p1.transport}
	p1.transport = recD
	resD, err := p1.Push(ctx, img, Target{Registry: proxy.Addr, Repository: repoD, Tags: []string{"c1"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := recD.mounts(repoD); len(got) < 3 || resD.UploadedBytes != 0 || resD.EngineReadBytes != 0 {
		t.Errorf("same run into D: mounts %v, uploaded %d, read %d; want every layer mounted from A", got, resD.UploadedBytes, resD.EngineReadBytes)
	}

	// A later process on the same machine (the digest cache remembers
	// where each layer was pushed): E mounts too.
	pE, eE := cachedPusher(t, st, cache1)
	recE := &recordingRT{next: pE.transport}
	pE.transport = recE
	resE, err := pE.Push(ctx, img, Target{Registry: proxy.Addr, Repository: repoE, Tags: []string{"c1"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := recE.mounts(repoE); len(got) < 3 || resE.UploadedBytes != 0 || eE.saves.Load() != 0 {
		t.Errorf("same machine into E: mounts %v, uploaded %d, %d exports; want every layer mounted", got, resE.UploadedBytes, eE.saves.Load())
	}

	// A fresh runner pushes the same image into B, which A's image is
	// mounted from.
	p2, e2 := freshPusher(t, st)
	rec := &recordingRT{next: p2.transport}
	p2.transport = rec
	target := Target{Registry: proxy.Addr, Repository: repoB, Tags: []string{"c1", "stage"}, MountFrom: []string{repoA}}
	pl, err := p2.Plan(ctx, img, target)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range pl.Layers {
		if !l.Missing || l.MountFrom != repoA {
			t.Errorf("plan layer %+v: want missing in %s and mounted from %s", l, repoB, repoA)
		}
	}
	if pl.MissingBytes != 0 {
		t.Errorf("plan: %d bytes to upload, want 0 (every layer mounted)", pl.MissingBytes)
	}
	proxy.Reset()
	res, err := p2.Push(ctx, img, target)
	if err != nil {
		t.Fatal(err)
	}
	got := rec.mounts(repoB)
	if len(got) != len(pl.Layers)+1 { // the layers and the config
		t.Errorf("%d mounts attempted, want %d: %v", len(got), len(pl.Layers)+1, got)
	}
	for _, l := range pl.Layers {
		if got[l.Digest] != repoA {
			t.Errorf("layer %s: mount from %q, want %q", l.Digest, got[l.Digest], repoA)
		}
	}
	if res.UploadedBytes != 0 || proxy.UploadedBytes() != 0 || res.EngineReadBytes != 0 || e2.saves.Load() != 0 {
		t.Errorf("mounted push: uploaded %d (registry got %d), read %d from %d engine exports; want all 0", res.UploadedBytes, proxy.UploadedBytes(), res.EngineReadBytes, e2.saves.Load())
	}
	if res.Digest != first.Digest || res.MountedLayers != len(pl.Layers) {
		t.Errorf("mounted push %+v, want digest %s and %d mounted layers", res, first.Digest, len(pl.Layers))
	}
	checkPresent(t, p2, st.Registry, repoB, pl.Layers)

	// A registry that declines the mount: the layer is uploaded, read back
	// from A, and the engine is still not read.
	p3, e3 := freshPusher(t, st)
	dec := &recordingRT{next: p3.transport, decline: true}
	p3.transport = dec
	proxy.Reset()
	res3, err := p3.Push(ctx, img, Target{Registry: proxy.Addr, Repository: repoC, Tags: []string{"c1", "stage"}, MountFrom: []string{repoA}})
	if err != nil {
		t.Fatal(err)
	}
	if got := dec.mounts(repoC); len(got) != len(pl.Layers)+1 {
		t.Errorf("declined: %d mounts attempted, want %d", len(got), len(pl.Layers)+1)
	}
	var layerBytes int64
	for _, l := range pl.Layers {
		layerBytes += l.Size
	}
	if res3.UploadedBytes != layerBytes || proxy.UploadedBytes() < layerBytes || res3.EngineReadBytes != 0 || e3.saves.Load() != 0 {
		t.Errorf("declined mounts: uploaded %d (registry got %d), want %d; read %d from %d engine exports, want 0",
			res3.UploadedBytes, proxy.UploadedBytes(), layerBytes, res3.EngineReadBytes, e3.saves.Load())
	}
	checkPresent(t, p3, st.Registry, repoC, pl.Layers)
	repo, _ := name.NewRepository(st.Registry+"/"+repoC, name.Insecure)
	rimg, err := remote.Image(repo.Tag("stage"), p3.remoteOpts(ctx, st.Registry)...)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := rimg.Digest(); d.String() != first.Digest {
		t.Errorf("%s:stage = %s, want %s", repoC, d, first.Digest)
	}
	checkImage(t, rimg)
}

// checkPresent HEADs each layer in the repository.
func checkPresent(t *testing.T, p *ECR, registry, repoName string, ls []Layer) {
	t.Helper()
	repo, _ := name.NewRepository(registry+"/"+repoName, name.Insecure)
	var ds []v1.Hash
	for _, l := range ls {
		h, _ := v1.NewHash(l.Digest)
		ds = append(ds, h)
	}
	ok, err := p.digestsPresent(context.Background(), repo, registry, ds)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range ls {
		if !ok[i] {
			t.Errorf("%s lacks layer %s", repoName, l.Digest)
		}
	}
}
