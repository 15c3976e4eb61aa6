from dataplatform.cli import console_script

console_script()
