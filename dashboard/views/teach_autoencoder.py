"""(being written this session)"""
from dashboard import ui

url, r = ui.start("Autoencoders and decoders")
