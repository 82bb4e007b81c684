/** The package's version, sent as `User-Agent: city-sdk-typescript/<version>`. */
export const VERSION = "0.1.0";
