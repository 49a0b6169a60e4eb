"""Model governance per symbol: champion and challengers (:mod:`.champion`), the promotion rule (:mod:`.rule`),
drift detection (:mod:`.drift`) and the audit events they produce (:mod:`.events`)."""
