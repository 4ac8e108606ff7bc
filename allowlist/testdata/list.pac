// Cross-government allow-list, format pac
// scope=common version=42 generated=2026-11-23T09:30:00Z entries=8
// sha256=8c16b394e018abb1989e1fd437b75fd38c09b452348ab9648c555593a45675a7 (of the canonical entries; verify the JSON form's signature)
// Listed names go DIRECT. Set OTHERWISE to your department's proxy.
var ALLOWED = "DIRECT";
var OTHERWISE = "PROXY proxy.invalid:3128";
var exact = {"app.zoom.us":1,"docs.example.org":1,"meet.example.org":1,"zoom.us":1};
var wild = {"example.net":1,"files.example.net":1,"xn--bcher-kva.example":1,"zoom.us":1};
function FindProxyForURL(url, host) {
  var h = host.toLowerCase();
  if (h.charAt(h.length - 1) === ".") h = h.substring(0, h.length - 1);
  if (Object.prototype.hasOwnProperty.call(exact, h)) return ALLOWED;
  for (;;) {
    if (Object.prototype.hasOwnProperty.call(wild, h)) return ALLOWED;
    var i = h.indexOf(".");
    if (i < 0) return OTHERWISE;
    h = h.substring(i + 1);
  }
}
