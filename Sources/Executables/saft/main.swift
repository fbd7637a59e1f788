import SaftTool

saftMain(Array(CommandLine.arguments.dropFirst()))
