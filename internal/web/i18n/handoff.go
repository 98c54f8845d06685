package i18n

// handoffMsgs are the target page's strings for a pending hand-off
// proposal (casework.Proposal; internal/web/pages, target.html).
var handoffMsgs = map[string]msg{
	"handoff.title":  {"en": "Hand-off proposed to %s", "fr": "Transfert proposé à %s"},
	"handoff.what":   {"en": "The target's newest first-hand observations fall in the jurisdiction of %[2]s; %[1]s holds the claim. Proposed on %[3]s: the two services should agree before either acts.", "fr": "Les observations directes les plus récentes de la cible relèvent de %[2]s ; %[1]s en a la prise en charge. Proposé le %[3]s : les deux services doivent s’accorder avant d’agir."},
	"handoff.reason": {"en": "Vigil's reason:", "fr": "Motif donné par Vigil :"},
	"handoff.answer": {"en": "It is accepted (the target and its claim go to the proposed service) or declined, with a note, by", "fr": "Il est accepté (la cible et sa prise en charge passent au service proposé) ou refusé, avec une note, par"},
}

func init() { register(handoffMsgs) }
