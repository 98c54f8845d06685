package main

// rootCommand is the whole command tree. Each command is defined in its own
// file (cmd_*.go).
func rootCommand() *command {
	sensor := sensorCommand()
	sensor.subs = append(sensor.subs, sensorED2KCommand(), sensorKeyCommand())
	return &command{
		name:    "vigil",
		summary: "Find peers sharing known abuse material on P2P networks, from hashes only.",
		usage:   "vigil [global flags] COMMAND [flags] [arguments]",
		help: `
Vigil watches peer-to-peer networks for files whose hashes are on known-CSAM
watch-lists, records who shared or looked for them (IP, port, exact UTC time,
client, how surely they held the file), and backs every claim with evidence a
defence expert can check. It works from hashes and protocol metadata only: it
never fetches, stores or shows abusive content.

Start here:
  vigil watchlist import --list national lists/national.csv
  vigil watchlist match 0123456789abcdef0123456789abcdef01234567
  vigil watchlist hash --format csv ~/known-files > known.csv
  vigil observations export --format jsonl --since 2026-11-01T00:00:00Z

Settings come from flags, then VIGIL_* environment variables, then a YAML
config file (--config or VIGIL_CONFIG; 'vigil config example' prints one).
Exit codes: 0 success, 1 input rejected or work failed, 2 usage error.
`,
		subs: []*command{
			demoCommand(),
			watchlistCommand(),
			observationsCommand(),
			sensor,
			ingestCommand(),
			targetsCommand(),
			targetCommand(),
			ispRequestCommand(),
			leadsCommand(),
			statsCommand(),
			claimCommand(),
			alertCommand(),
			caseCommand(),
			operationCommand(),
			holdCommand(),
			retentionCommand(),
			quarantineCommand(),
			serveCommand(),
			userCommand(),
			agencyCommand(),
			tokenCommand(),
			auditCommand(),
			evidenceCommand(),
			verifyCommand(),
			geoCommand(),
			labCommand(),
			configCommand(),
			versionCommand(),
		},
	}
}
