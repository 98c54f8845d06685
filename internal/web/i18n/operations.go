package i18n

// operationsMsgs are the operations pages' words (internal/casework's
// operations: /operations and /operations/{id}).
var operationsMsgs = map[string]msg{
	"nav.operations":                       {"en": "Operations", "fr": "Opérations"},
	"operations.title":                     {"en": "Operations", "fr": "Opérations"},
	"operations.intro":                     {"en": "National selections of targets, shared out to services ('vigil operation').", "fr": "Sélections nationales de cibles, réparties entre les services (« vigil operation »)."},
	"operations.id":                        {"en": "no.", "fr": "nº"},
	"operations.name":                      {"en": "name", "fr": "nom"},
	"operations.by":                        {"en": "made by", "fr": "créée par"},
	"operations.none":                      {"en": "No operation.", "fr": "Aucune opération."},
	"operations.notfound":                  {"en": "No such operation.", "fr": "Opération introuvable."},
	"operation.title":                      {"en": "Operation %s", "fr": "Opération %s"},
	"operation.made":                       {"en": "Made by %s on", "fr": "Créée par %s le"},
	"operation.ownrow":                     {"en": "Your service's row only: the other services' are not shown to you.", "fr": "La ligne de votre service seulement : celles des autres services ne vous sont pas montrées."},
	"operation.service":                    {"en": "service", "fr": "service"},
	"operation.targets":                    {"en": "targets", "fr": "cibles"},
	"operation.unassigned":                 {"en": "not assigned yet", "fr": "pas encore attribuée"},
	"operation.total":                      {"en": "total", "fr": "total"},
	"operation.selected":                   {"en": "Targets selected (score and level when the operation was made)", "fr": "Cibles retenues (score et niveau à la création de l’opération)"},
	"operation.scorethen":                  {"en": "score then", "fr": "score alors"},
	"operation.levelthen":                  {"en": "level then", "fr": "niveau alors"},
	"operation.step.none":                  {"en": "no step yet", "fr": "aucune étape"},
	"operation.step.lead":                  {"en": "lead", "fr": "piste"},
	"operation.step.isp_request_sent":      {"en": "ISP request sent", "fr": "réquisition FAI envoyée"},
	"operation.step.subscriber_identified": {"en": "subscriber identified", "fr": "abonné identifié"},
	"operation.step.search":                {"en": "search", "fr": "perquisition"},
	"operation.step.closed":                {"en": "closed", "fr": "clos"},
	"operation.outcome.arrest":             {"en": "arrest", "fr": "interpellation"},
	"operation.outcome.devices_seized":     {"en": "devices seized", "fr": "supports saisis"},
	"operation.outcome.hands_on_abuse":     {"en": "hands-on abuse found", "fr": "abus physiques découverts"},
	"operation.outcome.victims_identified": {"en": "victims identified", "fr": "victimes identifiées"},
	"operation.outcome.no_further_action":  {"en": "no further action", "fr": "classement sans suite"},
}

func init() { register(operationsMsgs) }
