package list

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"runtime"
	"sync"

	"filippo.io/edwards25519"
)

// Sign returns the base64 Ed25519 signature of a list body: a signature
// over the exact bytes, which crypto/ed25519.Verify (and Verify and
// Verifier) accept like any other.
//
// RFC 8032 derives the signature's secret nonce r from the key and the
// whole message, so crypto/ed25519.Sign reads the message twice. For a
// list body of tens of megabytes that first pass is half the cost of
// signing, and a change to common re-signs every scope. A list body in the
// canonical layout (AppendHead, the entries array, Tail) starts with a head that names its scope and version and carries
// the SHA-256 of its entries, so Sign derives r instead from the key,
// 32 fresh random bytes and that head (a "hedged" nonce: unpredictable and
// never repeated while the system's random source works, and still bound
// to the message if it did not). The verifier cannot tell how r was made;
// only its secrecy and uniqueness matter. A body without that layout is
// signed by crypto/ed25519 as RFC 8032 says.
func Sign(key ed25519.PrivateKey, body []byte) string {
	head, content, ok := Split(body)
	if !ok {
		return base64.StdEncoding.EncodeToString(ed25519.Sign(key, body))
	}
	return SignParts(key, head, content)
}

// SignParts is Sign for the body head, content, Tail, held in those parts
// (see Split).
func SignParts(key ed25519.PrivateKey, head, content []byte) string {
	var fresh [32]byte
	rand.Read(fresh[:]) // never fails (crypto/rand since Go 1.24)
	return base64.StdEncoding.EncodeToString(signWithNonce(key, [][]byte{head, content, []byte(Tail)}, fresh[:], head))
}

// SignAll signs the bodies heads[i], contents[i], Tail as SignParts does, on as many cores as the process may use
// (GOMAXPROCS, which follows its CPU affinity), and returns the
// signatures in order.
func SignAll(key ed25519.PrivateKey, heads, contents [][]byte) []string {
	sigs := make([]string, len(heads))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(len(heads), runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for i := range next {
				sigs[i] = SignParts(key, heads[i], contents[i])
			}
		})
	}
	for i := range heads {
		next <- i
	}
	close(next)
	wg.Wait()
	return sigs
}

// signWithNonce is Ed25519 signing (RFC 8032 §5.1.6) of the message made
// of the given pieces, with the nonce r taken from SHA-512(prefix ||
// nonce...), where RFC 8032 takes it from SHA-512(prefix || message).
// Scalar and point arithmetic are filippo.io/edwards25519's, in constant
// time where secrets are involved.
// TestSignWithNonceIsEd25519 checks that with the message as the nonce
// input it gives crypto/ed25519.Sign's signature, byte for byte.
func signWithNonce(key ed25519.PrivateKey, message [][]byte, nonce ...[]byte) []byte {
	h := sha512.Sum512(key.Seed())
	s, err := new(edwards25519.Scalar).SetBytesWithClamping(h[:32])
	if err != nil {
		panic(err) // 32 bytes always decode
	}
	d := sha512.New()
	d.Write(h[32:])
	for _, n := range nonce {
		d.Write(n)
	}
	r, err := new(edwards25519.Scalar).SetUniformBytes(d.Sum(nil))
	if err != nil {
		panic(err) // 64 bytes always decode
	}
	R := new(edwards25519.Point).ScalarBaseMult(r).Bytes()
	d.Reset()
	d.Write(R)
	d.Write(key.Public().(ed25519.PublicKey))
	for _, m := range message {
		d.Write(m)
	}
	k, err := new(edwards25519.Scalar).SetUniformBytes(d.Sum(nil))
	if err != nil {
		panic(err)
	}
	S := new(edwards25519.Scalar).MultiplyAdd(k, s, r)
	return append(R, S.Bytes()...)
}
