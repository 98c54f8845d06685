package i18n

// alertsMsgs are the overview's Alerts block (internal/alerts): each
// rule kind's words, a summary of held alerts, and the held mark.
var alertsMsgs = map[string]msg{
	"alerts.kind.list_seen":        {"en": "Watched list seen in your jurisdiction", "fr": "Liste surveillée vue dans votre ressort"},
	"alerts.kind.score_passed":     {"en": "Target passed the score", "fr": "Cible au-delà du score"},
	"alerts.kind.flagged_active":   {"en": "Flagged target active again", "fr": "Cible signalée de nouveau active"},
	"alerts.kind.held_new_address": {"en": "Target you hold seen at a new address", "fr": "Cible que vous détenez vue à une nouvelle adresse"},
	"alerts.summary":               {"en": "Alerts held by the rule's hourly limit:", "fr": "Alertes retenues par la limite horaire de la règle\u202f:"},
	"alerts.held":                  {"en": "held (not sent)", "fr": "retenue (non envoyée)"},
}

func init() { register(alertsMsgs) }
