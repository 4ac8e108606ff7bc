package list

// Unexported functions the tests of package list_test check directly.
var (
	SignWithNonce = signWithNonce
	PlainString   = plainString
)
