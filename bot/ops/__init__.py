"""Operating the bot: Prometheus metrics (`metrics`), the health check (`health`), the HTTP server
for both (`server`), JSON log lines (`logs`) and the container's health probe (`probe`).

Kept free of imports here, so that `python -m bot.ops.probe` stays light.
"""
