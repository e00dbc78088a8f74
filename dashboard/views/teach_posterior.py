"""(being written this session)"""
from dashboard import ui

url, r = ui.start("Posterior and evidence")
