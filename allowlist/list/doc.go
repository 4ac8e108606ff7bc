// Package list is the published list format: the bytes the registry
// signs, stores and serves for one version of a scope, and the code that
// writes, reads, patches, signs and verifies them. It depends on the
// standard library and filippo.io/edwards25519 only (not on the rest of
// the registry), so that it can be read and audited on its own. The
// registry (package allowlist) and the resolver both import it; it is
// their contract, with the header names and the diff body in contract.go.
//
// # What is signed
//
// A list body is exactly these bytes, with no other spacing, escapes or
// field order:
//
//	{"scope":S,"version":V,"generated_at":T,"sha256":"H","entries":A}\n
//
// S is the scope as a JSON string; V a non-negative decimal integer
// without leading zeros; T the generation time as a JSON string in RFC
// 3339 (the registry writes whole seconds in UTC); A the entries array,
//
//	[{"pattern":P,"site":I,"category":C},...]
//
// in SortEntries order (strictly increasing patterns), each string as
// encoding/json writes it; and H the lower-case hex SHA-256 of the bytes
// of A, from "[" to "]". The final newline is part of the body. The
// signature (HeaderSignature, base64) is pure Ed25519 (RFC 8032, no
// pre-hash) over the whole body, newline included: every byte above is
// covered. A schema-2 body (allowlist.WithEndpoints) inserts
// `,"endpoints":[...]` before the final "}" and is signed the same way
// with its own signature.
//
// # The trust boundary
//
// A resolver accepts a list from the network only through these:
//
//   - Verifier (NewVerifier, Write, Verify) and Verify: the signature
//     check, RFC 8032 §5.1.7. Verify is crypto/ed25519.Verify; Verifier
//     does the same steps over a running SHA-512 so that a large body is
//     never held (verify.go; checked against crypto/ed25519 by
//     TestVerifierAgreesWithEd25519 and FuzzVerifier).
//   - Read, Reread and Walk: the decoder (read.go). It accepts only the
//     layout above and checks the sha256 field against the entries; Read
//     also checks every pattern with the Check it is given.
//   - Patch: builds the next version from a held one and a diff; its
//     output is only trusted once a Verifier over exactly the bytes it
//     wrote accepts it (patch.go).
//
// On the signing side, Sign, SignParts and SignAll (sign.go) produce
// ordinary Ed25519 signatures; the only hand-written part is how the
// secret nonce is derived (signWithNonce, a hedged nonce over the body's
// head instead of a second pass over the whole body), which
// TestSignWithNonceIsEd25519 holds to crypto/ed25519.Sign byte for byte.
//
// # Files
//
//   - entry.go: Entry, its canonical order (Compare, SortEntries), Diff.
//   - encode.go: the encoder (Encode, EncodeArray, AppendHead, Split, Join).
//   - read.go: the decoder (Read, Reread, Walk).
//   - patch.go: Patch.
//   - sign.go, verify.go: signatures.
//   - contract.go: the HTTP header names and the diff body (DiffBody,
//     EncodeDiff) that the API writes and the resolver reads.
package list
