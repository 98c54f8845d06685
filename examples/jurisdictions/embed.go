// Package jurisdictions embeds the example rules files, so that
// --rules example:NAME (the demo, 'vigil agency import', the sensors'
// and ingest's enrichment, 'vigil geo lookup', 'vigil isp-request') reads
// one without a file.
// A deployment names its own file with --rules. ('vigil serve' routes
// nothing: observations are routed as they are stored.)
package jurisdictions

import "embed"

// FS holds france.yaml, belgium.yaml, germany.yaml and spain.yaml.
//
//go:embed *.yaml
var FS embed.FS
