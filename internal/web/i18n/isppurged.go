package i18n

// ispPurgedMsgs are the ISP request form's strings for rows whose raw
// exchange a retention purge removed (internal/web/pages, isp.html;
// isp.Request.MarkTranscriptsPurged).
var ispPurgedMsgs = map[string]msg{
	"isp.purged": {
		"en": "%d row(s) of this request rest on an exchange whose transcript was purged under retention on %s: the request says so on each of them, gives only the digest recorded at the time. A row signed in evidence form 2 (every sensor's form) is still checked against the evidence log, which commits to that digest; a row of the older form 1 could not be, its log entry committing to the purged bytes, and the request's note says which kind each line is.",
		"fr": "%d ligne(s) de cette demande reposent sur un échange dont la transcription a été purgée au titre de la durée de conservation le %s : la demande le dit sur chacune d’elles, n’en donne que l’empreinte enregistrée lors de l’échange. Une ligne signée sous la forme de preuve 2 (celle de tous les capteurs) reste vérifiée au regard du journal de preuve, qui s’engage sur cette empreinte ; une ligne de l’ancienne forme 1 n’a pu l’être, son entrée du journal s’engageant sur les octets purgés, et la note de la demande dit de quelle sorte est chaque ligne.",
	},
	"isp.purged.between": {
		"en": "%d row(s) of this request rest on an exchange whose transcript was purged under retention, between %s and %s: the request says so on each of them, gives only the digest recorded at the time. A row signed in evidence form 2 (every sensor's form) is still checked against the evidence log, which commits to that digest; a row of the older form 1 could not be, its log entry committing to the purged bytes, and the request's note says which kind each line is.",
		"fr": "%d ligne(s) de cette demande reposent sur un échange dont la transcription a été purgée au titre de la durée de conservation, entre le %s et le %s : la demande le dit sur chacune d’elles, n’en donne que l’empreinte enregistrée lors de l’échange. Une ligne signée sous la forme de preuve 2 (celle de tous les capteurs) reste vérifiée au regard du journal de preuve, qui s’engage sur cette empreinte ; une ligne de l’ancienne forme 1 n’a pu l’être, son entrée du journal s’engageant sur les octets purgés, et la note de la demande dit de quelle sorte est chaque ligne.",
	},
	"isp.purged.unknown": {
		"en": "Whether some rows' transcripts were purged under retention could not be read: the downloaded request says it on each row that is.",
		"fr": "Impossible de lire si des transcriptions de lignes ont été purgées au titre de la durée de conservation : la demande téléchargée le dit sur chaque ligne concernée.",
	},
}

func init() { register(ispPurgedMsgs) }
