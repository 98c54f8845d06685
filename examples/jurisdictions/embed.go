// Package jurisdictions embeds the example rules files, so that the demo
// and 'vigil serve' without a --rules file route observations the way the
// examples document. A deployment names its own file with --rules.
package jurisdictions

import "embed"

// FS holds france.yaml, belgium.yaml, germany.yaml and spain.yaml.
//
//go:embed *.yaml
var FS embed.FS
