"""The weekly cost and safety review, built from the ledger, the SLO history, the safety
review queue and the canary tables.

    reports.data.build_report(engine, week, now=..., slos=...) -> WeeklyReport  (the JSON form)
    reports.render.html / markdown / as_json / summary                        (the other forms)
    reports.service.ReportService      build, write, list and announce reports
    reports.jobs.register_report_job   the weekly cron job (default Monday 09:00 UTC)
    reports.router.build_reports_router   GET /v1/reports, /v1/reports/{name} (admin)
    reports.cli.app                    `inferwatch report weekly`
"""
