"""What the commands share: flags generated from the settings classes, one-line errors, and modules callable like
the functions they run (ncjax.audit, ncjax.mitigate). The commands themselves are ncjax.run, ncjax.inspect,
ncjax.mitigate, ncjax.audit, ncjax.bench and ncjax.convert."""
