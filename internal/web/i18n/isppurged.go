package i18n

// ispPurgedMsgs are the ISP request form's strings for rows whose raw
// exchange a retention purge removed (internal/web/pages, isp.html;
// isp.Request.MarkTranscriptsPurged).
var ispPurgedMsgs = map[string]msg{
	"isp.purged": {
		"en": "%d row(s) of this request rest on an exchange whose transcript was purged under retention on %s: the request says so on each of them, gives only the digest recorded at the time, and those rows could not be checked against the evidence log.",
		"fr": "%d ligne(s) de cette demande reposent sur un échange dont la transcription a été purgée au titre de la durée de conservation le %s : la demande le dit sur chacune d’elles, n’en donne que l’empreinte enregistrée lors de l’échange, et ces lignes n’ont pu être vérifiées au regard du journal de preuve.",
	},
	"isp.purged.between": {
		"en": "%d row(s) of this request rest on an exchange whose transcript was purged under retention, between %s and %s: the request says so on each of them, gives only the digest recorded at the time, and those rows could not be checked against the evidence log.",
		"fr": "%d ligne(s) de cette demande reposent sur un échange dont la transcription a été purgée au titre de la durée de conservation, entre le %s et le %s : la demande le dit sur chacune d’elles, n’en donne que l’empreinte enregistrée lors de l’échange, et ces lignes n’ont pu être vérifiées au regard du journal de preuve.",
	},
	"isp.purged.unknown": {
		"en": "Whether some rows' transcripts were purged under retention could not be read: the downloaded request says it on each row that is.",
		"fr": "Impossible de lire si des transcriptions de lignes ont été purgées au titre de la durée de conservation : la demande téléchargée le dit sur chaque ligne concernée.",
	},
}

func init() { register(ispPurgedMsgs) }
