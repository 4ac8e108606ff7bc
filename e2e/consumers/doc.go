// Package consumers is the consumer conformance suite: every published
// list format, loaded into its real consumer the way the file's header
// and docs/formats.md say, is asked about a matrix of names, and each
// answer is compared with what the list itself decides (the matcher).
// Its tests start Squid, Unbound, BIND, PowerDNS Recursor, dnsmasq, NSD,
// pactester and Chromium as processes on loopback ports in a temporary
// directory; with CI set, a consumer that is not installed fails them.
package consumers
