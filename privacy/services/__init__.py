"""privacy's writes: the audit log (:mod:`.audit`), forget requests and their purge job
(:mod:`.forgetting`), what each app holds (:mod:`.builtin`), the proof (:mod:`.checks`), the
access export (:mod:`.export`) and retention (:mod:`.retention`)."""
