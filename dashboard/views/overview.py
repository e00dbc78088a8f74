"""(being written this session)"""
from dashboard import ui

url, r = ui.start("Families side by side")
