"""(being written this session)"""
from dashboard import ui

url, r = ui.start("Gradients and gaps")
