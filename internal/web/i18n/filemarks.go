package i18n

// fileMarksMsgs are the strings of the marks a target's file list shows
// beside each level (internal/web/pages, target.html;
// analysis.FileInfo.Marks): a level is never shown without the marks of
// the observations that gave it.
var fileMarksMsgs = map[string]msg{
	"file.marks.partial": {
		"en": "marks of the observations read only",
		"fr": "marques des seules observations lues",
	},
	"file.marks.partial.why": {
		"en": "The timeline read with this page holds only part of this file's observations (the newest ones, or some were purged under retention): the marks shown beside its level are those of the observations read.",
		"fr": "La chronologie lue avec cette page ne contient qu’une partie des observations de ce fichier (les plus récentes, ou certaines ont été purgées au titre de la conservation)\u202f: les marques affichées à côté de son niveau sont celles des observations lues.",
	},
}

func init() { register(fileMarksMsgs) }
