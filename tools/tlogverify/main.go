// Command tlogverify checks the ledger's transparency log with Go's own
// implementation of it (golang.org/x/mod/sumdb/tlog and sumdb/note), so that
// our Python (compensation/tlog.py, compensation/tlog_notes.py) is held to
// code we did not write.
//
// It opens a signed checkpoint with a verifier key, then, as asked, checks
// an inclusion proof for a leaf, a consistency proof from an older
// checkpoint, witness cosignatures, and the C2SP tiles and entry bundles of
// a directory or an HTTP mirror. It prints one "OK" line per check and
// exits 1 on the first failure (2 on bad usage).
//
// Build offline against Debian's golang-golang-x-mod-dev:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o tlogverify .
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var (
		keyArg        = flag.String("key", "", "the log's verifier key, or @FILE holding it (required)")
		checkpointArg = flag.String("checkpoint", "", "FILE with the signed checkpoint (required)")
		origin        = flag.String("origin", "", "the expected origin line (default: the key's name)")
		leafArg       = flag.String("leaf", "", "FILE with a leaf's data")
		index         = flag.Int64("index", -1, "the leaf's index")
		proofArg      = flag.String("proof", "", "FILE with the inclusion proof, one base64 hash a line")
		oldArg        = flag.String("old-checkpoint", "", "FILE with an older signed checkpoint")
		consArg       = flag.String("consistency", "", "FILE with the consistency proof, one base64 hash a line")
		tilesArg      = flag.String("tiles", "", "DIR or http(s):// prefix serving tile/<L>/<N>[.p/<W>]")
		entries       = flag.Bool("entries", false, "with -tiles: recompute the root from every entry bundle")
		witnesses     listFlag
	)
	flag.Var(&witnesses, "witness", "a witness's cosignature/v1 verifier key (or @FILE) that must have cosigned; repeatable")
	flag.Parse()
	if *keyArg == "" || *checkpointArg == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*keyArg, *checkpointArg, *origin, *leafArg, *index, *proofArg, *oldArg, *consArg, *tilesArg, *entries, witnesses); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		os.Exit(1)
	}
}

func run(keyArg, checkpointArg, origin, leafArg string, index int64, proofArg, oldArg, consArg, tilesArg string, entries bool, witnessArgs []string) error {
	vkey, err := readArg(keyArg)
	if err != nil {
		return err
	}
	logKey, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return fmt.Errorf("verifier key: %v", err)
	}
	if origin == "" {
		origin = logKey.Name()
	}
	var cosigners []*cosignatureVerifier
	known := []note.Verifier{logKey}
	for _, w := range witnessArgs {
		text, err := readArg(w)
		if err != nil {
			return err
		}
		cv, err := newCosignatureVerifier(strings.TrimSpace(text))
		if err != nil {
			return fmt.Errorf("witness key: %v", err)
		}
		cosigners = append(cosigners, cv)
		known = append(known, cv)
	}
	verifiers := note.VerifierList(known...)

	tree, n, err := openCheckpoint(checkpointArg, verifiers, logKey, origin)
	if err != nil {
		return err
	}
	fmt.Printf("OK checkpoint %s size %d root %s\n", origin, tree.N, tree.Hash)

	for _, cv := range cosigners {
		found := false
		for _, sig := range n.Sigs {
			if sig.Name == cv.Name() && sig.Hash == cv.KeyHash() {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("witness %s did not cosign the checkpoint", cv.Name())
		}
		fmt.Printf("OK cosignature %s time %d\n", cv.Name(), cv.lastTime)
	}

	var leafHash tlog.Hash
	if leafArg != "" {
		data, err := os.ReadFile(leafArg)
		if err != nil {
			return err
		}
		leafHash = tlog.RecordHash(data)
	}
	if proofArg != "" {
		if leafArg == "" || index < 0 {
			return errors.New("-proof needs -leaf and -index")
		}
		proof, err := readHashes(proofArg)
		if err != nil {
			return err
		}
		if err := tlog.CheckRecord(tlog.RecordProof(proof), tree.N, tree.Hash, index, leafHash); err != nil {
			return fmt.Errorf("inclusion of leaf %d in tree %d: %v", index, tree.N, err)
		}
		fmt.Printf("OK inclusion index %d size %d\n", index, tree.N)
	}

	if oldArg != "" || consArg != "" {
		if oldArg == "" || consArg == "" {
			return errors.New("-consistency needs -old-checkpoint")
		}
		old, _, err := openCheckpoint(oldArg, verifiers, logKey, origin)
		if err != nil {
			return fmt.Errorf("old checkpoint: %v", err)
		}
		proof, err := readHashes(consArg)
		if err != nil {
			return err
		}
		if old.N > tree.N {
			return fmt.Errorf("the tree shrank from %d to %d", old.N, tree.N)
		}
		if old.N == tree.N {
			if old.Hash != tree.Hash || len(proof) != 0 {
				return fmt.Errorf("two different trees of size %d", tree.N)
			}
		} else if err := tlog.CheckTree(tlog.TreeProof(proof), tree.N, tree.Hash, old.N, old.Hash); err != nil {
			return fmt.Errorf("consistency %d -> %d: %v", old.N, tree.N, err)
		}
		fmt.Printf("OK consistency %d -> %d\n", old.N, tree.N)
	}

	if tilesArg != "" {
		tr := &tileReader{base: strings.TrimSuffix(tilesArg, "/")}
		hr := tlog.TileHashReader(tree, tr)
		th, err := tlog.TreeHash(tree.N, hr)
		if err != nil {
			return fmt.Errorf("tiles: %v", err)
		}
		if th != tree.Hash {
			return fmt.Errorf("tiles give root %s, the checkpoint %s", th, tree.Hash)
		}
		fmt.Printf("OK tiles %d tiles read, root %s\n", tr.read, th)
		if index >= 0 {
			proof, err := tlog.ProveRecord(tree.N, index, hr)
			if err != nil {
				return fmt.Errorf("inclusion proof from tiles: %v", err)
			}
			if leafArg != "" {
				if err := tlog.CheckRecord(proof, tree.N, tree.Hash, index, leafHash); err != nil {
					return fmt.Errorf("inclusion of leaf %d from tiles: %v", index, err)
				}
				fmt.Printf("OK tile inclusion index %d\n", index)
			}
		}
		if entries {
			if err := checkEntries(tr, tree); err != nil {
				return err
			}
			fmt.Printf("OK entries %d leaves recompute the root\n", tree.N)
		}
	}
	return nil
}

// openCheckpoint opens a signed note with the known keys, requires the
// log's own signature and parses the C2SP tlog-checkpoint body.
func openCheckpoint(path string, verifiers note.Verifiers, logKey note.Verifier, origin string) (tlog.Tree, *note.Note, error) {
	msg, err := os.ReadFile(path)
	if err != nil {
		return tlog.Tree{}, nil, err
	}
	n, err := note.Open(msg, verifiers)
	if err != nil {
		return tlog.Tree{}, nil, fmt.Errorf("checkpoint note: %v", err)
	}
	signedByLog := false
	for _, sig := range n.Sigs {
		if sig.Name == logKey.Name() && sig.Hash == logKey.KeyHash() {
			signedByLog = true
		}
	}
	if !signedByLog {
		return tlog.Tree{}, nil, errors.New("the log's key did not sign the checkpoint")
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) < 3 {
		return tlog.Tree{}, nil, errors.New("a checkpoint has at least three lines")
	}
	for _, l := range lines {
		if l == "" {
			return tlog.Tree{}, nil, errors.New("a checkpoint has no empty lines")
		}
	}
	if lines[0] != origin {
		return tlog.Tree{}, nil, fmt.Errorf("checkpoint origin %q, want %q", lines[0], origin)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return tlog.Tree{}, nil, fmt.Errorf("bad checkpoint size %q", lines[1])
	}
	root, err := tlog.ParseHash(lines[2])
	if err != nil {
		return tlog.Tree{}, nil, fmt.Errorf("bad checkpoint root %q", lines[2])
	}
	return tlog.Tree{N: size, Hash: root}, n, nil
}

func readArg(arg string) (string, error) {
	if strings.HasPrefix(arg, "@") {
		b, err := os.ReadFile(arg[1:])
		return string(b), err
	}
	return arg, nil
}

func readHashes(path string) ([]tlog.Hash, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []tlog.Hash
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		h, err := tlog.ParseHash(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		out = append(out, h)
	}
	return out, nil
}

// cosignatureVerifier checks C2SP tlog-cosignature/v1 (Ed25519, type 0x04)
// signatures, which x/mod v0.7.0 predates: written here from the spec.
type cosignatureVerifier struct {
	name     string
	hash     uint32
	key      ed25519.PublicKey
	lastTime uint64
}

func newCosignatureVerifier(vkey string) (*cosignatureVerifier, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 || len(parts[1]) != 8 {
		return nil, errors.New("malformed witness key")
	}
	hash, err1 := strconv.ParseUint(parts[1], 16, 32)
	raw, err2 := base64.StdEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || len(raw) != 33 || raw[0] != 0x04 {
		return nil, errors.New("malformed witness key (want type 0x04 and 32 bytes)")
	}
	h := sha256.Sum256(append([]byte(parts[0]+"\n"), raw...))
	if binary.BigEndian.Uint32(h[:4]) != uint32(hash) {
		return nil, errors.New("witness key ID does not match")
	}
	return &cosignatureVerifier{name: parts[0], hash: uint32(hash), key: ed25519.PublicKey(raw[1:])}, nil
}

func (c *cosignatureVerifier) Name() string    { return c.name }
func (c *cosignatureVerifier) KeyHash() uint32 { return c.hash }
func (c *cosignatureVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig[:8])
	if t > 1<<63-1 {
		return false
	}
	var m bytes.Buffer
	fmt.Fprintf(&m, "cosignature/v1\ntime %d\n", t)
	m.Write(msg)
	if !ed25519.Verify(c.key, m.Bytes(), sig[8:]) {
		return false
	}
	c.lastTime = t
	return true
}

// tileReader serves tlog.TileHashReader from C2SP tlog-tiles paths
// (tile/<L>/<N>[.p/<W>]: Go's sumdb paths without the height element).
type tileReader struct {
	base string
	read int
}

func (r *tileReader) Height() int { return 8 }

func c2spPath(t tlog.Tile) string {
	p := t.Path() // tile/8/<L>/<N>[.p/<W>], or tile/8/data/... for L = -1
	p = strings.TrimPrefix(p, "tile/8/")
	p = strings.Replace(p, "data/", "entries/", 1)
	return "tile/" + p
}

func (r *tileReader) fetch(path string) ([]byte, error) {
	r.read++
	if strings.HasPrefix(r.base, "http://") || strings.HasPrefix(r.base, "https://") {
		client := http.Client{Timeout: 30 * time.Second}
		resp, err := client.Get(r.base + "/" + path)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	}
	return os.ReadFile(filepath.Join(r.base, filepath.FromSlash(path)))
}

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		b, err := r.fetch(c2spPath(t))
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func (r *tileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

// checkEntries rebuilds the tree from every entry bundle (big-endian uint16
// length-prefixed entries) with tlog.StoredHashes and compares the root.
func checkEntries(r *tileReader, tree tlog.Tree) error {
	var stored []tlog.Hash
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x < 0 || x >= int64(len(stored)) {
				return nil, fmt.Errorf("index %d not stored", x)
			}
			out[i] = stored[x]
		}
		return out, nil
	})
	var n int64
	for start := int64(0); start < tree.N; start += 256 {
		w := tree.N - start
		if w > 256 {
			w = 256
		}
		t := tlog.Tile{H: 8, L: -1, N: start / 256, W: int(w)}
		b, err := r.fetch(c2spPath(t))
		if err != nil {
			return fmt.Errorf("entries: %v", err)
		}
		count := int64(0)
		for len(b) > 0 {
			if len(b) < 2 {
				return fmt.Errorf("%s: truncated length", c2spPath(t))
			}
			l := int(binary.BigEndian.Uint16(b))
			if len(b) < 2+l {
				return fmt.Errorf("%s: truncated entry", c2spPath(t))
			}
			hashes, err := tlog.StoredHashes(n, b[2:2+l], hr)
			if err != nil {
				return err
			}
			stored = append(stored, hashes...)
			b = b[2+l:]
			n++
			count++
		}
		if count != w {
			return fmt.Errorf("%s holds %d entries, want %d", c2spPath(t), count, w)
		}
	}
	th, err := tlog.TreeHash(tree.N, hr)
	if err != nil {
		return err
	}
	if th != tree.Hash {
		return fmt.Errorf("the entries give root %s, the checkpoint %s", th, tree.Hash)
	}
	return nil
}
