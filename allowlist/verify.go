package allowlist

import (
	"crypto/ed25519"
	"crypto/sha512"
	"hash"

	"filippo.io/edwards25519"
)

// ListVerifier checks an Ed25519 signature over a body that arrives in
// pieces, so that a resolver never holds a large list in memory to verify
// it. Ed25519 hashes R || A || message with SHA-512 before one scalar
// multiplication; crypto/ed25519 only takes the message whole, so this
// does the same steps over a running hash, with the group arithmetic of
// filippo.io/edwards25519 (the package the standard library's own
// implementation comes from). TestListVerifierAgreesWithEd25519 and
// FuzzListVerifier check it against crypto/ed25519.
type ListVerifier struct {
	pub []byte
	sig []byte
	h   hash.Hash
}

// NewListVerifier starts verifying a base64 signature made with the key
// whose public half is pub. Feed it the body with Write, then call Verify.
func NewListVerifier(pub ed25519.PublicKey, signature string) (*ListVerifier, error) {
	sig, err := decodeSignature(pub, signature)
	if err != nil {
		return nil, err
	}
	v := &ListVerifier{pub: pub, sig: sig, h: sha512.New()}
	v.h.Write(sig[:32])
	v.h.Write(pub)
	return v, nil
}

// Write adds body bytes. It never fails.
func (v *ListVerifier) Write(p []byte) (int, error) { return v.h.Write(p) }

// Verify reports whether the signature holds over everything written. It
// follows RFC 8032 §5.1.7 as crypto/ed25519 does: the public key and R
// must decode, S must be canonical, and [S]B - [k]A must encode to R.
func (v *ListVerifier) Verify() error {
	bad := errBadSignature
	A, err := new(edwards25519.Point).SetBytes(v.pub)
	if err != nil {
		return bad
	}
	S, err := new(edwards25519.Scalar).SetCanonicalBytes(v.sig[32:])
	if err != nil {
		return bad
	}
	k, err := new(edwards25519.Scalar).SetUniformBytes(v.h.Sum(nil))
	if err != nil {
		return bad
	}
	minusA := new(edwards25519.Point).Negate(A)
	R := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(k, minusA, S)
	if string(R.Bytes()) != string(v.sig[:32]) {
		return bad
	}
	return nil
}
